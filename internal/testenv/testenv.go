// Package testenv finds the real services that `make test` starts (MLflow,
// PostgreSQL, Redis, ONNX Runtime, the Python venv) for integration tests.
// A missing service skips the test with a clear message, except under
// CI=true, where it fails: CI must run every integration test.
package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

// InCI reports whether CI=true (or 1).
func InCI() bool {
	ok, _ := strconv.ParseBool(os.Getenv("CI"))
	return ok
}

// Missing skips (locally) or fails (under CI) because a service is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run `make test`, which starts the services)"
	if InCI() {
		t.Fatalf("required service missing under CI: %s", msg)
	}
	t.Skip(msg)
}

// Env returns the env var, or reports the service missing.
func Env(t testing.TB, key, what string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		Missing(t, "%s: %s is not set", what, key)
	}
	return v
}

// MLflowURI returns MLFLOW_TRACKING_URI after checking the server's /health.
func MLflowURI(t testing.TB) string {
	t.Helper()
	uri := Env(t, "MLFLOW_TRACKING_URI", "MLflow server")
	if err := Healthy(context.Background(), uri); err != nil {
		Missing(t, "MLflow server at %s: %v", uri, err)
	}
	return uri
}

// Healthy checks GET uri/health.
func Healthy(ctx context.Context, uri string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(uri, "/")+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %s", resp.Status)
	}
	return nil
}

// Client returns a client for the test MLflow server, ignoring other MLFLOW_* env.
func Client(t testing.TB, opts ...mlflowclient.Option) *mlflowclient.Client {
	t.Helper()
	uri := MLflowURI(t)
	base := []mlflowclient.Option{
		mlflowclient.WithEnv(func(string) (string, bool) { return "", false }),
		mlflowclient.WithTrackingURI(uri),
	}
	c, err := mlflowclient.New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("mlflowclient.New: %v", err)
	}
	return c
}

// Python returns the venv's python (CAPFLOW_PYTHON).
func Python(t testing.TB) string {
	t.Helper()
	p := Env(t, "CAPFLOW_PYTHON", "Python venv")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "Python venv: %v", err)
	}
	return p
}

// MLflowBin returns the venv's mlflow CLI (CAPFLOW_MLFLOW_BIN), for tests that
// start a throwaway server of their own.
func MLflowBin(t testing.TB) string {
	t.Helper()
	p := Env(t, "CAPFLOW_MLFLOW_BIN", "mlflow CLI")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "mlflow CLI: %v", err)
	}
	return p
}

// PostgresDSN returns CAPFLOW_PG_DSN.
func PostgresDSN(t testing.TB) string { t.Helper(); return Env(t, "CAPFLOW_PG_DSN", "PostgreSQL") }

// RedisAddr returns CAPFLOW_REDIS_ADDR.
func RedisAddr(t testing.TB) string { t.Helper(); return Env(t, "CAPFLOW_REDIS_ADDR", "Redis") }

// ORTLibrary returns ONNXRUNTIME_SHARED_LIBRARY_PATH after checking the file.
func ORTLibrary(t testing.TB) string {
	t.Helper()
	p := Env(t, "ONNXRUNTIME_SHARED_LIBRARY_PATH", "ONNX Runtime")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "ONNX Runtime library: %v", err)
	}
	return p
}

var seq atomic.Int64

// Name returns a name unique to this test process, for experiments and models
// on a shared server.
func Name(t testing.TB, prefix string) string {
	return fmt.Sprintf("%s-%s-%d-%d", prefix, strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano(), seq.Add(1))
}

// SealToolsDir returns the Seal-Tools development data: CAPFLOW_SEALTOOLS_DIR,
// else shared/datasets/seal-tools beside the repository (where CI puts it).
func SealToolsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CAPFLOW_SEALTOOLS_DIR")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			Missing(t, "Seal-Tools dataset: %v", err)
		}
		dir = filepath.Join(filepath.Dir(root), "shared", "datasets", "seal-tools")
	}
	if _, err := os.Stat(filepath.Join(dir, "tool.jsonl")); err != nil {
		Missing(t, "Seal-Tools dataset: %v (set CAPFLOW_SEALTOOLS_DIR)", err)
	}
	return dir
}

// RepoRoot is $CAPFLOW_ROOT, or the nearest directory above the working
// directory with a go.mod. It needs no testing.TB, so the bench commands
// use it too.
func RepoRoot() (string, error) {
	if r := os.Getenv("CAPFLOW_ROOT"); r != "" {
		return r, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
