package mlflowclient

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noEnv keeps the developer's MLFLOW_* variables out of unit tests.
func noEnv(string) (string, bool) { return "", false }

func fastRetry(n int) RetryPolicy {
	return RetryPolicy{MaxRetries: n, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}
}

func testClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(append([]Option{WithEnv(noEnv), WithTrackingURI(url), WithRetryPolicy(fastRetry(3))}, opts...)...)
	require.NoError(t, err)
	return c
}

func TestAPIErrorFromMLflowJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=7 exists"}`)
	}))
	defer srv.Close()
	_, err := testClient(t, srv.URL).Experiments.Get(context.Background(), "7")
	var ae *APIError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, 404, ae.StatusCode)
	assert.Equal(t, CodeResourceDoesNotExist, ae.Code)
	assert.Equal(t, "No Experiment with id=7 exists", ae.Message)
	assert.True(t, IsNotFound(err))
	assert.False(t, IsAlreadyExists(err))
	assert.True(t, errors.Is(err, &APIError{Code: CodeResourceDoesNotExist}))
	assert.Contains(t, err.Error(), "GET /api/2.0/mlflow/experiments/get")
}

func TestNonJSON404IsEndpointNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := testClient(t, srv.URL).Runs.SetTag(context.Background(), "abc", "k", "v")
	assert.Equal(t, CodeEndpointNotFound, ErrorCode(err))
	assert.True(t, IsNotFound(err))
}

func TestRetriesTransientStatusesThenSucceeds(t *testing.T) {
	for _, status := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				require.JSONEq(t, `{"run_id":"abc","key":"k","value":"v"}`, string(body), "body is re-sent whole on retry")
				if calls.Add(1) < 3 {
					w.WriteHeader(status)
					return
				}
				fmt.Fprint(w, `{}`)
			}))
			defer srv.Close()
			require.NoError(t, testClient(t, srv.URL).Runs.SetTag(context.Background(), "abc", "k", "v"))
			assert.Equal(t, int32(3), calls.Load())
		})
	}
}

func TestNoRetryOnDeterministicErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{400, `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}`},
		{400, `{"error_code":"INVALID_STATE","message":"deleted"}`},
		{404, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no"}`},
		{500, `{"error_code":"INVALID_PARAMETER_VALUE","message":"mapped to 500 by a proxy"}`},
		{503, `{"error_code":"INVALID_STATE","message":"deterministic despite 503"}`},
		{401, ``},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
		}))
		err := testClient(t, srv.URL).Runs.SetTag(context.Background(), "abc", "k", "v")
		srv.Close()
		require.Error(t, err)
		assert.Equal(t, int32(1), calls.Load(), "status %d %s must not be retried", tc.status, tc.body)
	}
}

func TestRetryBudgetExhausted(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := testClient(t, srv.URL).Runs.SetTag(context.Background(), "abc", "k", "v")
	assert.Equal(t, int32(4), calls.Load(), "1 attempt + 3 retries")
	assert.Equal(t, CodeTemporarilyUnavailable, ErrorCode(err))
}

func TestRetriesConnectionRefused(t *testing.T) {
	// A port with nothing listening: every attempt is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	var retries atomic.Int32
	c := testClient(t, "http://"+addr, WithLogger(newCountingLogger(&retries)))
	err = c.Runs.SetTag(context.Background(), "abc", "k", "v")
	require.Error(t, err)
	assert.ErrorContains(t, err, "connection refused")
	assert.Equal(t, int32(3), retries.Load())
}

func TestRetryAfterHonoured(t *testing.T) {
	var calls atomic.Int32
	var gap time.Duration
	var last time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			last = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		gap = time.Since(last)
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	c := testClient(t, srv.URL, WithRetryPolicy(RetryPolicy{MaxRetries: 2, MinWait: time.Millisecond, MaxWait: 3 * time.Second}))
	require.NoError(t, c.Runs.SetTag(context.Background(), "abc", "k", "v"))
	assert.GreaterOrEqual(t, gap, 950*time.Millisecond)
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	p := RetryPolicy{MaxRetries: 10, MinWait: 100 * time.Millisecond, MaxWait: time.Second}
	for attempt, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceil *= time.Millisecond
		for range 50 {
			d := p.wait(attempt, "")
			assert.GreaterOrEqual(t, d, ceil/2)
			assert.LessOrEqual(t, d, ceil)
		}
	}
	assert.Equal(t, time.Second, p.wait(0, "30"), "Retry-After is capped at MaxWait")
	d, ok := parseRetryAfter(time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat), time.Now())
	assert.True(t, ok)
	assert.InDelta(t, 2*time.Second, d, float64(1100*time.Millisecond))
}

func TestContextCancelStopsRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := testClient(t, srv.URL, WithRetryPolicy(RetryPolicy{MaxRetries: 10, MinWait: time.Second, MaxWait: time.Second}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Runs.SetTag(ctx, "abc", "k", "v")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 900*time.Millisecond)
	assert.Equal(t, int32(1), calls.Load())
}

func TestContextDeadlineDuringRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := testClient(t, srv.URL).Runs.SetTag(ctx, "abc", "k", "v")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestAuthHeadersAndUserAgent(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	ctx := context.Background()

	require.NoError(t, testClient(t, srv.URL, WithBasicAuth("alice", "s3cret")).Runs.SetTag(ctx, "abc", "k", "v"))
	assert.Equal(t, "Basic YWxpY2U6czNjcmV0", got.Get("Authorization"))
	assert.True(t, strings.HasPrefix(got.Get("User-Agent"), "capflow-mlflowclient/"), got.Get("User-Agent"))

	require.NoError(t, testClient(t, srv.URL, WithBasicAuth("alice", "x"), WithToken("tok")).Runs.SetTag(ctx, "abc", "k", "v"))
	assert.Equal(t, "Bearer tok", got.Get("Authorization"), "token wins over basic")

	require.NoError(t, testClient(t, srv.URL).Runs.SetTag(ctx, "abc", "k", "v"))
	assert.Empty(t, got.Get("Authorization"))
}

func TestEnvConfigAndOverride(t *testing.T) {
	env := map[string]string{
		"MLFLOW_TRACKING_URI":          "http://env-host:5000",
		"MLFLOW_REGISTRY_URI":          "http://registry:5001/",
		"MLFLOW_TRACKING_TOKEN":        "envtok",
		"MLFLOW_EXPERIMENT_NAME":       "exp",
		"MLFLOW_RUN_ID":                "run1",
		"MLFLOW_TRACKING_INSECURE_TLS": "true",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := New(WithEnv(lookup))
	require.NoError(t, err)
	assert.Equal(t, "http://env-host:5000", c.TrackingURI())
	assert.Equal(t, "http://registry:5001", c.RegistryURI())
	assert.Equal(t, "exp", c.DefaultExperimentName())
	assert.Equal(t, "run1", c.DefaultRunID())
	assert.Equal(t, "envtok", c.cfg.token)
	assert.True(t, c.cfg.insecureTLS)

	c, err = New(WithEnv(lookup), WithTrackingURI("https://opt:1"), WithExperimentName("o"), WithToken("opt"))
	require.NoError(t, err)
	assert.Equal(t, "https://opt:1", c.TrackingURI())
	assert.Equal(t, "o", c.DefaultExperimentName())
	assert.Equal(t, "opt", c.cfg.token)
}

func TestConfigErrorsNeverLeakCredentials(t *testing.T) {
	_, err := New(WithEnv(noEnv))
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "missing URI: %v", err)

	for _, uri := range []string{"ftp://bob:hunter2@x", "http://bob:hunter2@[::1", "file:///tmp/mlruns", "databricks"} {
		_, err := New(WithEnv(noEnv), WithTrackingURI(uri))
		require.True(t, errors.As(err, &ce), "%s: %v", uri, err)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

func TestCredentialsInURLBecomeBasicAuthAndStayOutOfErrors(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error_code":"INVALID_PARAMETER_VALUE","message":"nope"}`)
	}))
	defer srv.Close()
	uri := strings.Replace(srv.URL, "http://", "http://bob:hunter2@", 1)
	c := testClient(t, uri)
	assert.NotContains(t, c.TrackingURI(), "hunter2")
	err := c.Runs.SetTag(context.Background(), "abc", "k", "v")
	require.Error(t, err)
	assert.Equal(t, "Basic Ym9iOmh1bnRlcjI=", auth)
	assert.NotContains(t, err.Error(), "hunter2")

	// Transport errors carry the URL: it must not carry the password either.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c = testClient(t, "http://bob:hunter2@"+addr, WithRetryPolicy(NoRetry()))
	err = c.Runs.SetTag(context.Background(), "abc", "k", "v")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestTLSOptions(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }))
	defer srv.Close()
	ctx := context.Background()

	var retries atomic.Int32
	err := testClient(t, srv.URL, WithLogger(newCountingLogger(&retries))).Runs.SetTag(ctx, "abc", "k", "v")
	assert.ErrorContains(t, err, "certificate", "an unknown CA is refused by default")
	assert.Equal(t, int32(0), retries.Load(), "an untrusted certificate is not retried")

	require.NoError(t, testClient(t, srv.URL, WithInsecureTLS(true)).Runs.SetTag(ctx, "abc", "k", "v"))

	certPath := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	require.NoError(t, os.WriteFile(certPath, pemBytes, 0o600))
	require.NoError(t, testClient(t, srv.URL, WithServerCertPath(certPath)).Runs.SetTag(ctx, "abc", "k", "v"))

	_, err = New(WithEnv(noEnv), WithTrackingURI(srv.URL), WithServerCertPath(filepath.Join(t.TempDir(), "missing.pem")))
	var ce *ConfigError
	assert.True(t, errors.As(err, &ce))
}

func TestValidationBeforeSending(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c := testClient(t, srv.URL)
	ctx := context.Background()
	var ve *ValidationError
	for name, err := range map[string]error{
		"empty run id":    c.Runs.SetTag(ctx, "", "k", "v"),
		"bad run id":      c.Runs.SetTag(ctx, "../etc", "k", "v"),
		"bad tag key":     c.Runs.SetTag(ctx, "abc", "a\nb", "v"),
		"bad metric":      c.Runs.LogMetric(ctx, "abc", Metric{Key: "x", Timestamp: -5}),
		"long param":      c.Runs.LogParam(ctx, "abc", "k", strings.Repeat("x", 6001)),
		"no experiment":   func() error { _, err := c.Runs.Create(ctx, CreateRunOptions{}); return err }(),
		"no search ids":   func() error { _, err := c.Runs.Search(ctx, SearchRunsOptions{}); return err }(),
		"end status":      c.Runs.End(ctx, "abc", RunRunning),
		"experiment name": func() error { _, err := c.Experiments.Create(ctx, CreateExperimentOptions{}); return err }(),
		"dataset fields":  c.Runs.LogInputs(ctx, "abc", []DatasetInput{{Dataset: Dataset{Name: "d"}}}, nil),
	} {
		assert.True(t, errors.As(err, &ve), "%s: want ValidationError, got %v", name, err)
	}
	assert.Equal(t, int32(0), calls.Load(), "nothing is sent for invalid input")
}

func TestSearchPagingIterator(t *testing.T) {
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case !strings.Contains(string(body), "page_token"):
			tokens = append(tokens, "")
			fmt.Fprint(w, `{"experiments":[{"experiment_id":"1"},{"experiment_id":"2"}],"next_page_token":"p2"}`)
		case strings.Contains(string(body), `"page_token":"p2"`):
			tokens = append(tokens, "p2")
			fmt.Fprint(w, `{"experiments":[{"experiment_id":"3"}]}`)
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	got, err := Collect(testClient(t, srv.URL).Experiments.All(context.Background(), SearchExperimentsOptions{MaxResults: 2}))
	require.NoError(t, err)
	ids := []string{}
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	assert.Equal(t, []string{"1", "2", "3"}, ids)
	assert.Equal(t, []string{"", "p2"}, tokens)
}

func TestGetOrCreateResolvesAlreadyExists(t *testing.T) {
	// The first get-by-name misses, create races with another writer and
	// meets RESOURCE_ALREADY_EXISTS, the second get-by-name finds it.
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/2.0/mlflow/experiments/get-by-name":
			if gets.Add(1) == 1 {
				w.WriteHeader(404)
				fmt.Fprint(w, `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no"}`)
				return
			}
			fmt.Fprint(w, `{"experiment":{"experiment_id":"42","name":"e"}}`)
		case "/api/2.0/mlflow/experiments/create":
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists"}`)
		}
	}))
	defer srv.Close()
	exp, err := testClient(t, srv.URL).Experiments.GetOrCreate(context.Background(), "e")
	require.NoError(t, err)
	assert.Equal(t, "42", exp.ID)
}

func TestRetriedCreateResolvesToExisting(t *testing.T) {
	// The first create reaches the server, which creates the experiment but
	// the answer is lost (503 here); the retry meets RESOURCE_ALREADY_EXISTS.
	var creates atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/2.0/mlflow/experiments/create":
			if creates.Add(1) == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error_code":"RESOURCE_ALREADY_EXISTS","message":"exists"}`)
		case "/api/2.0/mlflow/experiments/get-by-name":
			assert.Equal(t, "e", r.URL.Query().Get("experiment_name"))
			fmt.Fprint(w, `{"experiment":{"experiment_id":"7","name":"e"}}`)
		}
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)
	id, err := c.Experiments.Create(context.Background(), CreateExperimentOptions{Name: "e"})
	require.NoError(t, err)
	assert.Equal(t, "7", id)

	// Without a retry, an existing name is the caller's error.
	creates.Store(1)
	_, err = c.Experiments.Create(context.Background(), CreateExperimentOptions{Name: "e"})
	assert.True(t, IsAlreadyExists(err))
}

func TestRetriesConnectionDroppedMidResponse(t *testing.T) {
	// The server closes the connection without answering: io.EOF / reset.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			conn.Close()
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	require.NoError(t, testClient(t, srv.URL).Runs.SetTag(context.Background(), "abc", "k", "v"))
	assert.Equal(t, int32(3), calls.Load())
}
