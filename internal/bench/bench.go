// Package bench is what every cmd/bench-* program shares: logging to stderr
// (stdout carries only the result line), cancellation on SIGINT/SIGTERM, and
// a FAILED line with exit status 1.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
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
