package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

// goAsync logs every point through one AsyncLogger with its default options,
// one LogMetric call per point as a training loop would, and times the loop
// plus Close (which returns once every point is acknowledged).
func (b *bench) goAsync(ctx context.Context, name string) (result, error) {
	runID, err := b.newRun(ctx, name)
	if err != nil {
		return result{}, err
	}
	lg, err := mlflowclient.NewAsyncLogger(b.c, runID, mlflowclient.AsyncLoggerOptions{
		// Keep any spill next to the server's state, not in the user's cache.
		JournalPath: filepath.Join(b.srv.dir, "journal-"+runID+".jsonl"),
	})
	if err != nil {
		return result{}, err
	}
	stopProfile, err := b.profile()
	if err != nil {
		_ = lg.Close(ctx)
		return result{}, err
	}

	cpu0, t0 := clientCPU(), time.Now()
	for step := range b.cfg.steps {
		ts := time.Now().UnixMilli()
		for k, key := range b.keys {
			m := mlflowclient.Metric{Key: key, Value: value(k, step), Timestamp: ts, Step: int64(step)}
			if err := lg.LogMetric(ctx, m); err != nil {
				_ = lg.Close(ctx)
				stopProfile()
				return result{}, fmt.Errorf("LogMetric: %w", err)
			}
		}
	}
	err = lg.Close(ctx)
	wall, cpu := time.Since(t0), clientCPU()-cpu0
	stopProfile()
	if err != nil {
		return result{}, fmt.Errorf("Close: %w", err)
	}
	st := lg.Stats()
	slog.Debug("async logger stats", "case", name, "sent", st.PointsSent, "batches", st.Batches, "retries", st.Retries)
	if st.Retries > 0 || st.Journaled > 0 {
		slog.Warn("async logger needed retries", "case", name, "retries", st.Retries, "journaled", st.Journaled)
	}
	return result{name: name, runID: runID, points: len(b.keys) * b.cfg.steps, wall: wall, cpu: cpu}, nil
}

// profile starts the CPU profile requested by -cpuprofile, for the first Go
// case only; the returned function stops it.
func (b *bench) profile() (func(), error) {
	if b.cfg.cpuProfile == "" || b.profiled {
		return func() {}, nil
	}
	b.profiled = true
	f, err := os.Create(b.cfg.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		slog.Info("wrote CPU profile", "path", b.cfg.cpuProfile)
	}, nil
}
