package bm25

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crossDocs is a small corpus with what the formula must get right: a term
// in more than half the documents ("get", where rank_bm25's own idf would be
// negative), repeated terms, an empty document and lengths from 0 to 13.
var crossDocs = []string{
	"getWeatherForecast: get the weather forecast for a city, weather by the hour",
	"getCurrentWeather: get the current weather",
	"getTideTimes get tide times for a port",
	"bookFlight: book a flight between two airports",
	"",
	"getFlightStatus get the status of a flight by its flight number flight flight",
	"convertCurrency convert an amount between currencies",
	"getExchangeRate get the exchange rate between two currencies",
	"getAirQuality get the air quality index of a city",
	"Zürich Straßenbahn Fahrplan getTramTimes",
}

var crossQueries = []string{
	"weather forecast for Paris",
	"get get get",
	"flight status flight",
	"exchange rate between currencies",
	"",
	"unknown words only",
	"zürich tram times",
	"city air weather tide flight currency",
}

// TestCrossCheckPython compares Scores with scripts/bm25_crosscheck.py on
// the same tokens: a numpy implementation of the formula and, where the
// venv has it, rank_bm25's BM25Okapi with Lucene's idf swapped in.
func TestCrossCheckPython(t *testing.T) {
	py := testenv.Python(t)
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	script := filepath.Join(root, "scripts", "bm25_crosscheck.py")

	for _, p := range []struct{ k1, b float64 }{{1.5, 0.75}, {1.2, 0}, {0.9, 1}, {2, 0.3}} {
		t.Run(fmt.Sprintf("k1=%v,b=%v", p.k1, p.b), func(t *testing.T) { crossCheck(t, py, script, p.k1, p.b) })
	}
}

// crossCheck runs the script for one (k1, b) and compares.
func crossCheck(t *testing.T, py, script string, k1, b float64) {
	cfg := DefaultConfig()
	cfg.K1, cfg.B = k1, b
	ix, err := New(crossDocs, cfg)
	require.NoError(t, err)

	req, err := json.Marshal(map[string]any{
		"k1": k1, "b": b,
		"docs":    tokenLists(cfg.Tokenizer, crossDocs),
		"queries": tokenLists(cfg.Tokenizer, crossQueries),
	})
	require.NoError(t, err)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	require.NoError(t, os.WriteFile(in, req, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, py, script, in, out).CombinedOutput()
	require.NoError(t, err, "%s", msg)

	var res struct {
		NumPy          [][]float64  `json:"numpy"`
		RankBM25       [][]*float64 `json:"rank_bm25"` // nil where rank_bm25 gave NaN
		RankBM25Ver    string       `json:"rank_bm25_version"`
		RankBM25Reason string       `json:"rank_bm25_error"`
	}
	body, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, &res))
	require.Len(t, res.NumPy, len(crossQueries))

	scores := make([][]float64, len(crossQueries))
	var nonzero int
	for qi, q := range crossQueries {
		scores[qi] = ix.Scores(q, nil)
		require.Len(t, res.NumPy[qi], len(crossDocs))
		for d, got := range scores[qi] {
			assert.InDelta(t, res.NumPy[qi][d], got, 1e-9, "numpy: query %q doc %d", q, d)
			if got > 0 {
				nonzero++
			}
		}
	}
	require.Greater(t, nonzero, 20, "the corpus must exercise the formula")

	t.Run("rank_bm25", func(t *testing.T) {
		if res.RankBM25 == nil {
			testenv.Missing(t, "rank_bm25 in the venv (%s): pip install rank_bm25==0.2.2", res.RankBM25Reason)
		}
		require.Len(t, res.RankBM25, len(crossQueries))
		for qi, q := range crossQueries {
			for d, got := range scores[qi] {
				want := res.RankBM25[qi][d]
				if want == nil {
					// rank_bm25's 0/0: an empty document when b = 1.
					assert.True(t, b == 1 && crossDocs[d] == "", "rank_bm25 %s NaN: query %q doc %d", res.RankBM25Ver, q, d)
					assert.Zero(t, got)
					continue
				}
				assert.InDelta(t, *want, got, 1e-9, "rank_bm25 %s: query %q doc %d", res.RankBM25Ver, q, d)
			}
		}
	})
}

func tokenLists(tok Tokenizer, texts []string) [][]string {
	out := make([][]string, len(texts))
	for i, s := range texts {
		out[i] = tok.Tokens(s)
		if out[i] == nil {
			out[i] = []string{} // JSON [] rather than null
		}
	}
	return out
}
