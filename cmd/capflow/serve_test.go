package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/serving"
)

// serveDim is the width of the test's store, encoder and model.
const serveDim = 16

// testenv.LogBuffer is a bytes.Buffer safe for the command's goroutine and the

// serveFixture writes a small catalog with hybrid embeddings into an
// embedded store at path (closed again: the command opens it) and registers
// a random SHGAT model of that catalog as a version of name in Production.
func serveFixture(t *testing.T, ctx context.Context, c *mlflowclient.Client, path, name string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	st := testmodel.Store(t, path, testmodel.StoreOptions{Dim: serveDim, Rand: rng, FeatureVersion: "fv-serve"})
	require.NoError(t, st.Close())
	p := testmodel.Package(t, testmodel.PackageOptions{Dim: serveDim, Seed: 1, Rand: rng, FeatureVersion: "fv-serve"})
	testmodel.Forget(t, c, name)
	version := testmodel.Register(t, ctx, c, name, p.Dir)
	_, err := mlmodel.Promote(ctx, c, name, version, mlflowclient.StageProduction)
	require.NoError(t, err)
}

// TestServe starts `capflow serve` in-process on a free port against a
// registered model: it prints the bound address, ranks with the bearer token
// from the environment (401 without it), reports the model in /metrics,
// keeps the token out of its log and stops cleanly when its context ends.
// Without any version to serve it fails at start, naming what is missing.
func TestServe(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	const token = "tok-3f9a-never-in-logs"
	t.Setenv(serveTokenEnv, token)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testenv.Client(t)
	uri := testenv.MLflowURI(t)
	lib := testenv.ORTLibrary(t)
	name := testenv.Name(t, "cli-serve")
	store := filepath.Join(t.TempDir(), "store.db")
	serveFixture(t, ctx, c, store, name)

	args := []string{"serve", "--store-path", store, "--text-dim", "16", "--graph-dim", "8", "--encoder", "hashing",
		"--tracking-uri", uri, "--name", name, "--ort-library", lib, "--addr", "127.0.0.1:0", "--poll", "-1s"}
	// Redis, when the environment has it, is the real L2; the test holds
	// without it.
	redis := os.Getenv("CAPFLOW_REDIS_ADDR")
	if redis != "" {
		args = append(args, "--redis-addr", redis)
	} else {
		t.Log("CAPFLOW_REDIS_ADDR not set: serving with the L1 cache only")
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var out, errOut testenv.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(runCtx, args, &out, &errOut) }()

	var base string
	addrRE := regexp.MustCompile(`(?m)^serving ` + regexp.QuoteMeta(name) + ` version 1 \(Production\) on (http://127\.0\.0\.1:\d+)$`)
	for base == "" {
		select {
		case err := <-done:
			t.Fatalf("serve ended before listening: %v\n%s", err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("serve never printed its address:\n%s", errOut.String())
		}
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	require.NotEqual(t, "http://127.0.0.1:0", base, "the bound port, not the asked one")

	post := func(auth string) (int, []byte) {
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/rank",
			strings.NewReader(`{"intent": "weather for my flight", "context_tools": ["tool3"], "session_id": "s1", "top_k": 3}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	code, body := post(token)
	require.Equal(t, http.StatusOK, code, string(body))
	var rr serving.RankResponse
	require.NoError(t, json.Unmarshal(body, &rr))
	assert.Equal(t, name, rr.ModelName)
	assert.Equal(t, "1", rr.ModelVersion)
	assert.Equal(t, serving.RolePrimary, rr.ServedBy)
	assert.Len(t, rr.Rankings, 3)
	t.Logf("%s on %s: %+v", strings.TrimSpace(out.String()), rr.Candidates, rr.Rankings)
	code, _ = post("")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = post("wrong")
	assert.Equal(t, http.StatusUnauthorized, code)

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ = get("/readyz")
	assert.Equal(t, http.StatusOK, code)
	code, metrics := get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Regexp(t, `capflow_serving_model_info\{name="`+regexp.QuoteMeta(name)+`",role="primary",stage="Production",version="1"\} 1`, metrics)
	assert.Contains(t, metrics, `capflow_featurestore_cache_hits_total{layer="l1"}`)
	assert.Contains(t, metrics, "capflow_serving_embedding_writes_dropped_total 0")
	assert.Contains(t, metrics, "capflow_serving_embedding_writes_failed_total 0")
	if redis != "" {
		l2 := regexp.MustCompile(`(?m)^capflow_featurestore_cache_(?:hits|misses)_total\{layer="l2"\} ([1-9]\d*)$`)
		assert.Regexp(t, l2, metrics, "the L1 misses went on to Redis")
	}

	// The cancel main's signal.NotifyContext does on SIGINT.
	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s of its context ending")
	}
	logs := errOut.String()
	assert.Contains(t, logs, `msg=serving `)
	assert.Contains(t, logs, `version=1`)
	assert.Contains(t, logs, `msg=stopped`)
	assert.NotContains(t, logs, token)
	_, err := http.Get(base + "/healthz")
	assert.Error(t, err, "nothing listens any more")
	// The verified version is cached for restarts without the registry.
	_, err = os.Stat(filepath.Join(os.Getenv("XDG_CACHE_HOME"), "capflow", "serve", name, "1.json"))
	assert.NoError(t, err)
	// The new intent's embedding was written behind the response, by the
	// time serve returned.
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: 16})
	require.NoError(t, err)
	st, err := embedded.Open(store, featurestore.Config{TextDim: 16, GraphDim: 8})
	require.NoError(t, err)
	_, err = st.Embedding(ctx, textembed.Key(enc.Model(), "weather for my flight"))
	assert.NoError(t, err, "the intent's embedding is in the store")
	require.NoError(t, st.Close())

	// No version under the followed alias and an empty cache: a clear error.
	_, err = capflow(t, append(args, "--follow", "@nobody", "--cache-dir", t.TempDir())...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "serve: no verified version of "+name+" (@nobody) in the registry at "+uri)
	// The Manager's own checks name the flag.
	_, err = capflow(t, append(args, "--canary", "Staging", "--canary-percent", "150")...)
	assert.ErrorContains(t, err, "serve: --canary-percent is 150, want 0–100")
	_, err = capflow(t, append(args, "--follow", "Archived")...)
	assert.ErrorContains(t, err, `serve: --follow is "Archived", want Production, Staging or @alias`)
}

// Flag mistakes are refused before anything is opened.
func TestServeFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	missing := []string{"--store-path", filepath.Join(t.TempDir(), "never", "created.db")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--canary-percent", "5"}, "--canary-percent needs --canary"},
		{[]string{"--shadow-rate", "0.1"}, "--shadow-rate needs --shadow"},
		{[]string{"--max-body", "0"}, "--max-body, --max-candidates and --max-text must be positive"},
		{[]string{"--ann-k", "-1"}, "--ann-k must be positive"},
		{[]string{"--token", "x"}, "flag provided but not defined: -token"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
	} {
		_, err := capflow(t, append(append([]string{"serve"}, missing...), tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
	_, err := os.Stat(filepath.Dir(missing[1]))
	assert.True(t, os.IsNotExist(err), "no store was created")
}
