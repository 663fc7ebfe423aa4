package textembed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Protocol is an embedding service's wire protocol.
type Protocol string

const (
	// OpenAI is POST {base}/v1/embeddings {"model","input":[...]} →
	// {"data":[{"index","embedding"}]} (also vLLM, LiteLLM, llama.cpp, ...).
	OpenAI Protocol = "openai"
	// TEI is HuggingFace text-embeddings-inference: POST {base}/embed
	// {"inputs":[...],"normalize":true,"truncate":true} → [[...]].
	TEI Protocol = "tei"
	// Ollama is POST {base}/api/embed {"model","input":[...]} →
	// {"embeddings":[[...]]}.
	Ollama Protocol = "ollama"
)

// HTTPConfig configures an HTTP encoder. Zero fields take defaults.
type HTTPConfig struct {
	Protocol Protocol
	// BaseURL is the service root, e.g. http://localhost:8080. For OpenAI a
	// base ending in /v1 (https://api.openai.com/v1) is also accepted.
	BaseURL string
	// Model is sent to OpenAI and Ollama services and names the model in
	// ModelInfo (and so in cache keys) for all protocols; required.
	Model string
	// ModelVersion is ModelInfo.Version: set it to the model's revision so
	// cached embeddings miss when the service's model changes.
	ModelVersion string
	// APIKey, if set, is sent as "Authorization: Bearer <key>". It is never
	// logged (HTTPConfig's LogValue redacts it).
	APIKey string
	// Dim, if set, is verified against every response; otherwise the first
	// response fixes it.
	Dim int
	// BatchSize is the most texts per request (default 32).
	BatchSize int
	// Timeout bounds each attempt of each request (default 60 s).
	Timeout time.Duration
	// MaxRetries is the number of retries after a failed attempt (default 3;
	// negative for none). 408, 429, 5xx, timeouts and connection errors are
	// retried; other statuses are not.
	MaxRetries int
	// Backoff is the wait before the first retry, doubling after each
	// (default 250 ms), at most MaxBackoff (default 10 s). A Retry-After
	// header in seconds is honoured up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Client is the HTTP client (default: a new one, timeouts come from
	// Timeout).
	Client *http.Client
	// Logger receives a debug line per attempt (default: discard).
	Logger *slog.Logger
}

// LogValue renders the configuration without the API key.
func (c HTTPConfig) LogValue() slog.Value {
	key := ""
	if c.APIKey != "" {
		key = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("protocol", string(c.Protocol)),
		slog.String("base_url", c.BaseURL),
		slog.String("model", c.Model),
		slog.String("model_version", c.ModelVersion),
		slog.String("api_key", key),
		slog.Int("dim", c.Dim),
		slog.Int("batch_size", c.BatchSize),
		slog.Duration("timeout", c.Timeout),
		slog.Int("max_retries", c.MaxRetries),
	)
}

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.Timeout == 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 3
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.Backoff == 0 {
		c.Backoff = 250 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// HTTPError is a non-2xx answer after the last attempt.
type HTTPError struct {
	URL        string
	StatusCode int
	Body       string // the start of the response body
	Attempts   int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("textembed: POST %s: status %d after %d attempt(s): %s", e.URL, e.StatusCode, e.Attempts, e.Body)
}

// ResponseError is a 2xx answer that is not a valid embedding response:
// undecodable, the wrong number of vectors, bad indices, NaN or Inf.
type ResponseError struct {
	URL    string
	Reason string
	Err    error // the decoding error, if any
}

func (e *ResponseError) Error() string {
	s := fmt.Sprintf("textembed: POST %s: bad response: %s", e.URL, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ResponseError) Unwrap() error { return e.Err }

// HTTP encodes by calling an embedding service. It is safe for concurrent
// use.
type HTTP struct {
	cfg HTTPConfig
	url string
	dim atomic.Int64 // fixed by cfg.Dim or the first response
}

// maxErrorBody is how much of an error response HTTPError keeps.
const maxErrorBody = 1024

// maxResponseBody bounds a response read into memory (a batch of 32
// 4096-d vectors as JSON is ~3 MiB).
const maxResponseBody = 256 << 20

// NewHTTP returns an HTTP encoder for cfg. It does not contact the service.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	cfg = cfg.withDefaults()
	base := strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, &ConfigError{Field: "BaseURL", Reason: fmt.Sprintf("%q must start with http:// or https://", cfg.BaseURL)}
	}
	var url string
	switch cfg.Protocol {
	case OpenAI:
		if strings.HasSuffix(base, "/v1") {
			url = base + "/embeddings"
		} else {
			url = base + "/v1/embeddings"
		}
	case TEI:
		url = base + "/embed"
	case Ollama:
		url = base + "/api/embed"
	default:
		return nil, &ConfigError{Field: "Protocol", Reason: fmt.Sprintf("%q is not one of openai, tei, ollama", cfg.Protocol)}
	}
	switch {
	case cfg.Model == "":
		return nil, &ConfigError{Field: "Model", Reason: "is required"}
	case cfg.Dim < 0:
		return nil, &ConfigError{Field: "Dim", Reason: fmt.Sprintf("is %d, must not be negative", cfg.Dim)}
	case cfg.BatchSize < 1:
		return nil, &ConfigError{Field: "BatchSize", Reason: fmt.Sprintf("is %d, must be positive", cfg.BatchSize)}
	case cfg.Timeout < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0:
		return nil, &ConfigError{Field: "Timeout", Reason: "and backoffs must not be negative"}
	}
	e := &HTTP{cfg: cfg, url: url}
	e.dim.Store(int64(cfg.Dim))
	return e, nil
}

// Dim is the configured dimension, or the first response's, or 0 before
// any response.
func (e *HTTP) Dim() int { return int(e.dim.Load()) }

// Model returns the configured model name and version.
func (e *HTTP) Model() ModelInfo {
	return ModelInfo{Name: e.cfg.Model, Version: e.cfg.ModelVersion, Dim: e.Dim()}
}

// Probe encodes one short text to learn the dimension and check the service
// answers, and returns the dimension.
func (e *HTTP) Probe(ctx context.Context) (int, error) {
	if _, err := e.Encode(ctx, []string{"probe"}); err != nil {
		return 0, err
	}
	return e.Dim(), nil
}

// Encode sends texts in batches of BatchSize, one batch at a time, and
// returns L2-normalised vectors in the order of texts.
func (e *HTTP) Encode(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.cfg.BatchSize {
		batch := texts[start:min(start+e.cfg.BatchSize, len(texts))]
		vecs, err := e.encodeBatch(ctx, batch)
		if err != nil {
			return nil, fmt.Errorf("textembed: texts %d-%d: %w", start, start+len(batch)-1, err)
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (e *HTTP) encodeBatch(ctx context.Context, texts []string) ([][]float32, error) {
	var req any
	switch e.cfg.Protocol {
	case OpenAI, Ollama:
		req = struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}{e.cfg.Model, texts}
	case TEI:
		req = struct {
			Inputs    []string `json:"inputs"`
			Normalize bool     `json:"normalize"`
			Truncate  bool     `json:"truncate"`
		}{texts, true, true}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("textembed: encoding request: %w", err)
	}
	resp, err := e.post(ctx, body)
	if err != nil {
		return nil, err
	}
	raw, err := e.decode(resp)
	if err != nil {
		return nil, err
	}
	if len(raw) != len(texts) {
		return nil, &ResponseError{URL: e.url, Reason: fmt.Sprintf("%d embeddings for %d texts", len(raw), len(texts))}
	}
	out := make([][]float32, len(raw))
	for i, v := range raw {
		if err := e.checkDim(len(v)); err != nil {
			return nil, err
		}
		for j, x := range v {
			// float32 overflow is as unusable as NaN.
			if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > math.MaxFloat32 {
				return nil, &ResponseError{URL: e.url, Reason: fmt.Sprintf("embedding %d element %d is %v", i, j, x)}
			}
		}
		out[i] = normalize(v)
	}
	return out, nil
}

// checkDim fixes the dimension on the first response and verifies it after.
func (e *HTTP) checkDim(got int) error {
	if got == 0 {
		return &ResponseError{URL: e.url, Reason: "empty embedding"}
	}
	if e.dim.CompareAndSwap(0, int64(got)) {
		return nil
	}
	if want := int(e.dim.Load()); got != want {
		return &DimensionError{Model: e.cfg.Model, Got: got, Want: want}
	}
	return nil
}

// decode reads the protocol's response into vectors in input order.
func (e *HTTP) decode(body []byte) ([][]float64, error) {
	bad := func(reason string, err error) error { return &ResponseError{URL: e.url, Reason: reason, Err: err} }
	switch e.cfg.Protocol {
	case OpenAI:
		var r struct {
			Data []struct {
				Index     *int      `json:"index"`
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, bad("invalid JSON", err)
		}
		out := make([][]float64, len(r.Data))
		for i, d := range r.Data {
			// The spec orders by index; servers that omit it list in order.
			k := i
			if d.Index != nil {
				k = *d.Index
			}
			if k < 0 || k >= len(out) || out[k] != nil {
				return nil, bad(fmt.Sprintf("data[%d] has index %d: not a permutation of 0..%d", i, k, len(out)-1), nil)
			}
			if d.Embedding == nil {
				return nil, bad(fmt.Sprintf("data[%d] has no embedding", i), nil)
			}
			out[k] = d.Embedding
		}
		return out, nil
	case TEI:
		var r [][]float64
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, bad("invalid JSON", err)
		}
		return r, nil
	default: // Ollama
		var r struct {
			Embeddings [][]float64 `json:"embeddings"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, bad("invalid JSON", err)
		}
		return r.Embeddings, nil
	}
}

// post sends body with retries and returns the 2xx response body.
func (e *HTTP) post(ctx context.Context, body []byte) ([]byte, error) {
	wait := e.cfg.Backoff
	for attempt := 1; ; attempt++ {
		resp, status, retryAfter, err := e.attempt(ctx, body)
		if err == nil && status/100 == 2 {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var final error
		if err != nil {
			final = fmt.Errorf("textembed: POST %s: attempt %d: %w", e.url, attempt, err)
		} else {
			final = &HTTPError{URL: e.url, StatusCode: status, Body: string(resp), Attempts: attempt}
		}
		retryable := err != nil || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		e.cfg.Logger.DebugContext(ctx, "textembed: attempt failed", "url", e.url, "attempt", attempt, "status", status, "err", err, "retryable", retryable)
		if !retryable || attempt > e.cfg.MaxRetries {
			return nil, final
		}
		d := min(wait, e.cfg.MaxBackoff)
		if retryAfter > 0 {
			d = min(retryAfter, e.cfg.MaxBackoff)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// attempt makes one request. A non-2xx status comes back with the start of
// its body and no error; err is a transport failure or a timeout.
func (e *HTTP) attempt(ctx context.Context, body []byte) (resp []byte, status int, retryAfter time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if e.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.APIKey)
	}
	r, err := e.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	defer r.Body.Close()
	limit := int64(maxResponseBody)
	if r.StatusCode/100 != 2 {
		limit = maxErrorBody
	}
	resp, err = io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("reading response: %w", err)
	}
	if s, perr := strconv.Atoi(r.Header.Get("Retry-After")); perr == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp, r.StatusCode, retryAfter, nil
}
