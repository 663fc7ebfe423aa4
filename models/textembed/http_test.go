package textembed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeVec is the fake service's unnormalised embedding of a text: length
// and a first-byte code, so order mistakes show.
func fakeVec(text string, dim int) []float64 {
	v := make([]float64, dim)
	v[0] = float64(len(text)) + 1
	if len(text) > 0 {
		v[1%dim] += float64(text[0])
	}
	return v
}

// fakeService speaks one protocol and records what it saw.
type fakeService struct {
	t        *testing.T
	protocol Protocol
	dim      int
	reverse  bool // OpenAI: list data in reverse order (indices still right)

	mu       sync.Mutex
	batches  [][]string
	auth     []string
	requests atomic.Int64
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	want := map[Protocol]string{OpenAI: "/v1/embeddings", TEI: "/embed", Ollama: "/api/embed"}[f.protocol]
	if r.Method != http.MethodPost || r.URL.Path != want {
		http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model     string   `json:"model"`
		Input     []string `json:"input"`
		Inputs    []string `json:"inputs"`
		Normalize *bool    `json:"normalize"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	texts := req.Input
	if f.protocol == TEI {
		texts = req.Inputs
		if req.Normalize == nil || !*req.Normalize {
			http.Error(w, "normalize not requested", http.StatusBadRequest)
			return
		}
	} else if req.Model != "bge-m3" {
		http.Error(w, "unknown model "+req.Model, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.batches = append(f.batches, texts)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()

	vecs := make([][]float64, len(texts))
	for i, s := range texts {
		vecs[i] = fakeVec(s, f.dim)
	}
	var resp any
	switch f.protocol {
	case OpenAI:
		type item struct {
			Object    string    `json:"object"`
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		}
		data := make([]item, len(vecs))
		for i, v := range vecs {
			k := i
			if f.reverse {
				k = len(vecs) - 1 - i
			}
			data[k] = item{"embedding", i, v}
		}
		resp = map[string]any{"object": "list", "data": data, "model": req.Model}
	case TEI:
		resp = vecs
	case Ollama:
		resp = map[string]any{"model": req.Model, "embeddings": vecs}
	}
	w.Header().Set("Content-Type", "application/json")
	require.NoError(f.t, json.NewEncoder(w).Encode(resp))
}

func newHTTP(t *testing.T, cfg HTTPConfig) *HTTP {
	t.Helper()
	e, err := NewHTTP(cfg)
	require.NoError(t, err)
	return e
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%c text %d%s", 'a'+i%26, i, strings.Repeat("x", i))
	}
	return out
}

func TestHTTPProtocols(t *testing.T) {
	for _, p := range []Protocol{OpenAI, TEI, Ollama} {
		t.Run(string(p), func(t *testing.T) {
			fake := &fakeService{t: t, protocol: p, dim: 8, reverse: p == OpenAI}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			e := newHTTP(t, HTTPConfig{Protocol: p, BaseURL: srv.URL + "/", Model: "bge-m3", ModelVersion: "rev1", APIKey: "sk-secret", BatchSize: 3, Backoff: time.Millisecond})
			assert.Zero(t, e.Dim(), "dimension unknown before the first response")

			in := texts(10)
			got, err := e.Encode(context.Background(), in)
			require.NoError(t, err)
			require.Len(t, got, len(in))
			for i, v := range got {
				assert.Equal(t, normalize(fakeVec(in[i], 8)), v, "vector %d", i)
				assert.InDelta(t, 1, Norm(v), 1e-6)
			}
			assert.Equal(t, 8, e.Dim())
			assert.Equal(t, ModelInfo{Name: "bge-m3", Version: "rev1", Dim: 8}, e.Model())
			// Batches of at most 3, in order, covering the input once.
			var sizes []int
			var all []string
			for _, b := range fake.batches {
				sizes = append(sizes, len(b))
				all = append(all, b...)
			}
			assert.Equal(t, []int{3, 3, 3, 1}, sizes)
			assert.Equal(t, in, all)
			for _, a := range fake.auth {
				assert.Equal(t, "Bearer sk-secret", a)
			}

			none, err := e.Encode(context.Background(), nil)
			require.NoError(t, err)
			assert.Empty(t, none)
			assert.EqualValues(t, 4, fake.requests.Load(), "no request for no texts")
		})
	}
}

func TestHTTPOpenAIBaseWithV1AndNoKey(t *testing.T) {
	fake := &fakeService{t: t, protocol: OpenAI, dim: 4}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := newHTTP(t, HTTPConfig{Protocol: OpenAI, BaseURL: srv.URL + "/v1", Model: "bge-m3", Dim: 4})
	d, err := e.Probe(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 4, d)
	assert.Equal(t, []string{""}, fake.auth, "no Authorization header without a key")
}

// flaky fails the first n requests with status (0: drop the connection).
func flaky(t *testing.T, n int64, status int, next http.Handler) (http.Handler, *atomic.Int64) {
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			if status == 0 {
				hj, ok := w.(http.Hijacker)
				require.True(t, ok)
				c, _, err := hj.Hijack()
				require.NoError(t, err)
				c.Close()
				return
			}
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			http.Error(w, "busy", status)
			return
		}
		next.ServeHTTP(w, r)
	}), &calls
}

func TestHTTPRetries(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError, 0} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			h, calls := flaky(t, 2, status, &fakeService{t: t, protocol: Ollama, dim: 4})
			srv := httptest.NewServer(h)
			defer srv.Close()
			// MaxBackoff caps the 1 s Retry-After so the test stays fast.
			e := newHTTP(t, HTTPConfig{Protocol: Ollama, BaseURL: srv.URL, Model: "bge-m3", Backoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			start := time.Now()
			got, err := e.Encode(context.Background(), []string{"a", "b"})
			require.NoError(t, err)
			assert.Len(t, got, 2)
			assert.EqualValues(t, 3, calls.Load())
			assert.Less(t, time.Since(start), 500*time.Millisecond)
		})
	}
	t.Run("gives up", func(t *testing.T) {
		h, calls := flaky(t, 100, http.StatusBadGateway, nil)
		srv := httptest.NewServer(h)
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "bge-m3", MaxRetries: 2, Backoff: time.Millisecond})
		_, err := e.Encode(context.Background(), []string{"a"})
		var he *HTTPError
		require.True(t, errors.As(err, &he), "%v", err)
		assert.Equal(t, http.StatusBadGateway, he.StatusCode)
		assert.Equal(t, 3, he.Attempts)
		assert.EqualValues(t, 3, calls.Load())
	})
	t.Run("timeout is retried", func(t *testing.T) {
		var calls atomic.Int64
		next := &fakeService{t: t, protocol: TEI, dim: 4}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				select {
				case <-r.Context().Done():
				case <-time.After(300 * time.Millisecond):
				}
				return
			}
			next.ServeHTTP(w, r)
		}))
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "bge-m3", Timeout: 50 * time.Millisecond, Backoff: time.Millisecond})
		_, err := e.Encode(context.Background(), []string{"a"})
		require.NoError(t, err)
		assert.EqualValues(t, 2, calls.Load())
	})
	t.Run("canceled context stops retrying", func(t *testing.T) {
		h, _ := flaky(t, 100, http.StatusServiceUnavailable, nil)
		srv := httptest.NewServer(h)
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "bge-m3", MaxRetries: 100, Backoff: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := e.Encode(ctx, []string{"a"})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestHTTPErrors(t *testing.T) {
	serve := func(status int, body string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
	}
	t.Run("4xx is not retried and keeps the body", func(t *testing.T) {
		var calls atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			http.Error(w, `{"error":"input too long"}`+strings.Repeat(" ", 5000), http.StatusUnprocessableEntity)
		}))
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "m"})
		_, err := e.Encode(context.Background(), []string{"a"})
		var he *HTTPError
		require.True(t, errors.As(err, &he), "%v", err)
		assert.Equal(t, http.StatusUnprocessableEntity, he.StatusCode)
		assert.Contains(t, he.Body, "input too long")
		assert.LessOrEqual(t, len(he.Body), maxErrorBody)
		assert.EqualValues(t, 1, calls.Load())
	})
	for _, tc := range []struct {
		name     string
		protocol Protocol
		body     string
		dim      int
		reason   string
	}{
		{"count mismatch", TEI, `[[1,0]]`, 0, "1 embeddings for 2 texts"},
		{"NaN literal", TEI, `[[NaN,1],[1,0]]`, 0, "invalid JSON"},
		{"float32 overflow", Ollama, `{"embeddings":[[1e300,1],[1,0]]}`, 0, "element 0 is 1e+300"},
		{"duplicate index", OpenAI, `{"data":[{"index":0,"embedding":[1,0]},{"index":0,"embedding":[0,1]}]}`, 0, "not a permutation"},
		{"index out of range", OpenAI, `{"data":[{"index":0,"embedding":[1,0]},{"index":2,"embedding":[0,1]}]}`, 0, "not a permutation"},
		{"empty vector", Ollama, `{"embeddings":[[],[]]}`, 0, "empty embedding"},
		{"not JSON", Ollama, `<html>proxy</html>`, 0, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(http.StatusOK, tc.body)
			defer srv.Close()
			e := newHTTP(t, HTTPConfig{Protocol: tc.protocol, BaseURL: srv.URL, Model: "m", Dim: tc.dim})
			_, err := e.Encode(context.Background(), []string{"a", "b"})
			var re *ResponseError
			require.True(t, errors.As(err, &re), "%v", err)
			assert.Contains(t, re.Reason, tc.reason)
		})
	}
	t.Run("dimension", func(t *testing.T) {
		srv := serve(http.StatusOK, `[[1,0,0],[0,1,0]]`)
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "m", Dim: 4})
		_, err := e.Encode(context.Background(), []string{"a", "b"})
		var de *DimensionError
		require.True(t, errors.As(err, &de), "%v", err)
		assert.Equal(t, DimensionError{Model: "m", Got: 3, Want: 4}, *de)

		// Without a configured Dim the first response fixes it.
		ragged := serve(http.StatusOK, `[[1,0,0],[0,1]]`)
		defer ragged.Close()
		e = newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: ragged.URL, Model: "m"})
		_, err = e.Encode(context.Background(), []string{"a", "b"})
		require.True(t, errors.As(err, &de), "%v", err)
		assert.Equal(t, DimensionError{Model: "m", Got: 2, Want: 3}, *de)
	})
	t.Run("zero vector stays zero", func(t *testing.T) {
		srv := serve(http.StatusOK, `[[0,0]]`)
		defer srv.Close()
		e := newHTTP(t, HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "m"})
		v, err := e.Encode(context.Background(), []string{""})
		require.NoError(t, err)
		assert.Equal(t, [][]float32{{0, 0}}, v)
	})
}

func TestHTTPConfigErrors(t *testing.T) {
	for _, cfg := range []HTTPConfig{
		{Protocol: "grpc", BaseURL: "http://x", Model: "m"},
		{Protocol: TEI, BaseURL: "x:8080", Model: "m"},
		{Protocol: TEI, BaseURL: "http://x"},
		{Protocol: TEI, BaseURL: "http://x", Model: "m", Dim: -1},
		{Protocol: TEI, BaseURL: "http://x", Model: "m", BatchSize: -1},
		{Protocol: TEI, BaseURL: "http://x", Model: "m", Timeout: -time.Second},
	} {
		_, err := NewHTTP(cfg)
		var ce *ConfigError
		assert.True(t, errors.As(err, &ce), "%+v: %v", cfg, err)
	}
}

func TestHTTPKeyNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, _ := flaky(t, 1, http.StatusServiceUnavailable, &fakeService{t: t, protocol: TEI, dim: 2})
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg := HTTPConfig{Protocol: TEI, BaseURL: srv.URL, Model: "m", APIKey: "sk-very-secret", Backoff: time.Millisecond, Logger: logger}
	logger.Info("config", "http", cfg)
	e := newHTTP(t, cfg)
	_, err := e.Encode(context.Background(), []string{"a"})
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "attempt failed", "the retry was logged")
	assert.Contains(t, buf.String(), "REDACTED")
	assert.NotContains(t, buf.String(), "sk-very-secret")
}

func TestHTTPConcurrent(t *testing.T) {
	fake := &fakeService{t: t, protocol: OpenAI, dim: 16, reverse: true}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := newHTTP(t, HTTPConfig{Protocol: OpenAI, BaseURL: srv.URL, Model: "bge-m3", BatchSize: 4})
	in := texts(9)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := e.Encode(context.Background(), in)
			if assert.NoError(t, err) {
				for i, v := range got {
					assert.Equal(t, normalize(fakeVec(in[i], 16)), v)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 16, e.Dim())
}
