package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
)

// benchRankBody is a /rank body like cmd/bench-serve's at N=1,000: a
// 1024-d unit intent embedding, a short intent text, one context tool and
// 1,000 candidate ids.
func benchRankBody(tb testing.TB) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	emb := make([]float32, 1024)
	var norm float64
	for i := range emb {
		emb[i] = float32(rng.NormFloat64())
		norm += float64(emb[i]) * float64(emb[i])
	}
	for i := range emb {
		emb[i] /= float32(math.Sqrt(norm))
	}
	ids := make([]string, 1000)
	for i, j := range rng.Perm(5000)[:1000] {
		ids[i] = fmt.Sprintf("cap-%06d", j)
	}
	b, err := json.Marshal(RankRequest{Intent: "kalo mine ruta vizo pe shido", IntentEmbedding: emb,
		ContextTools: []string{"tool-0042"}, CandidateIDs: ids, TopK: 10})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeRankRequest decodes and validates a realistic /rank body
// read through http.MaxBytesReader, as the server does.
func BenchmarkDecodeRankRequest(b *testing.B) {
	body := benchRankBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := http.MaxBytesReader(nil, readCloser{bytes.NewReader(body)}, 1<<20)
		if _, err := DecodeRankRequest(r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
