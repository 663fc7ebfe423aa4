// Package bench is what every cmd/bench-* program shares: logging to stderr
// (stdout carries only the result line), cancellation on SIGINT/SIGTERM, and
// a FAILED line with exit status 1.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/capflow/capflow/internal/testenv"
)

// Main runs a benchmark and exits.
func Main(name string, run func(ctx context.Context) error) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: FAILED: %v\n", name, err)
		os.Exit(1)
	}
}

// PythonScript returns the venv's python (CAPFLOW_PYTHON, set by
// scripts/services.sh env) and the path of scripts/<name>, for the
// benchmarks that measure a Python peer in the same run.
func PythonScript(name string) (python, script string, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", "", err
	}
	python = os.Getenv("CAPFLOW_PYTHON")
	if python == "" {
		return "", "", errors.New("CAPFLOW_PYTHON is not set (eval \"$(bash scripts/services.sh env)\")")
	}
	return python, filepath.Join(root, "scripts", name), nil
}
