package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/capflow/capflow/mlflowclient"
)

// bench holds what every case shares: one server, one experiment, the keys.
type bench struct {
	cfg      config
	c        *mlflowclient.Client
	srv      *server
	expID    string
	keys     []string
	python   string
	script   string
	profiled bool
}

// value is what every case logs for key index k at step s (the Python script
// computes the same k + s/1000, bit for bit).
func value(k, step int) float64 { return float64(k) + float64(step)/1000 }

func (b *bench) newRun(ctx context.Context, name string) (string, error) {
	r, err := b.c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: b.expID, RunName: name})
	if err != nil {
		return "", fmt.Errorf("creating run %s: %w", name, err)
	}
	return r.Info.RunID, nil
}

// clientCPU is this process's user+sys CPU seconds. RUSAGE_SELF covers every
// thread of the Go process and excludes children (the server).
func clientCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// pythonClient runs scripts/bench_mlflow_python.py, which logs with
// MlflowClient().log_batch in chunks of 1000 and times only its loop.
func (b *bench) pythonClient(ctx context.Context, name string) (result, error) {
	in, err := json.Marshal(map[string]any{
		"tracking_uri": b.srv.URI, "experiment_id": b.expID, "run_name": name,
		"keys": len(b.keys), "steps": b.cfg.steps, "chunk": 1000,
	})
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, b.python, b.script, string(in))
	cmd.Env = append(withoutMLflowEnv(os.Environ()), "MLFLOW_DISABLE_TELEMETRY=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("%s: %w\n%s", b.script, err, tail(stderr.String(), 3000))
	}
	// The client prints "View run ..." lines too; the result is the last line.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got struct {
		RunID  string  `json:"run_id"`
		WallS  float64 `json:"wall_s"`
		CPUS   float64 `json:"cpu_s"`
		Points int     `json:"points"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		return result{}, fmt.Errorf("%s: unexpected output %q: %w", b.script, tail(string(out), 500), err)
	}
	return result{name: name, runID: got.RunID, points: got.Points,
		wall: time.Duration(got.WallS * float64(time.Second)), cpu: got.CPUS}, nil
}

// ceiling posts pre-built 1000-metric log-batch bodies over conns concurrent
// connections with plain net/http: no validation, no encoding, no retries
// policy, just the server's speed (and the loopback). A body that fails
// transiently (sqlite's "database is locked" under concurrent writers, a 5xx)
// is re-sent and counted, so the rate is that of points actually stored.
func (b *bench) ceiling(ctx context.Context, name string, conns, points int) (result, error) {
	runID, err := b.newRun(ctx, name)
	if err != nil {
		return result{}, err
	}
	bodies, err := b.batchBodies(runID, points)
	if err != nil {
		return result{}, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	url := b.srv.URI + "/api/2.0/mlflow/runs/log-batch"

	work := make(chan []byte, len(bodies))
	for _, body := range bodies {
		work <- body
	}
	close(work)
	var retries atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup

	srv0, cpu0, t0 := b.srv.CPUSeconds(), clientCPU(), time.Now()
	for range conns {
		wg.Go(func() {
			for body := range work {
				for attempt := 0; ; attempt++ {
					status, msg, err := post(ctx, hc, url, body)
					if err == nil && status == http.StatusOK {
						break
					}
					if attempt < 10 && ctx.Err() == nil && (err != nil || status >= 500) {
						retries.Add(1)
						time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
						continue
					}
					once.Do(func() { firstErr = fmt.Errorf("log-batch: status %d: %v %s", status, err, tail(msg, 500)) })
					return
				}
			}
		})
	}
	wg.Wait()
	r := result{name: name, runID: runID, points: points, conns: conns, wall: time.Since(t0),
		cpu: clientCPU() - cpu0, serverCPU: b.srv.CPUSeconds() - srv0, retries: int(retries.Load())}
	return r, firstErr
}

func post(ctx context.Context, hc *http.Client, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg), err
}

// batchBodies encodes points metric points as log-batch bodies of 1000
// metrics, in the order a training loop produces them (step by step, all
// keys per step).
func (b *bench) batchBodies(runID string, points int) ([][]byte, error) {
	type body struct {
		RunID   string                `json:"run_id"`
		Metrics []mlflowclient.Metric `json:"metrics"`
	}
	var out [][]byte
	cur := body{RunID: runID}
	flush := func() error {
		if len(cur.Metrics) == 0 {
			return nil
		}
		raw, err := json.Marshal(cur)
		out = append(out, raw)
		cur.Metrics = cur.Metrics[:0]
		return err
	}
	// Timestamps advance with the steps, as they do when a loop logs them.
	t0 := time.Now().UnixMilli()
	for i := range points {
		step, k := i/len(b.keys), i%len(b.keys)
		cur.Metrics = append(cur.Metrics, mlflowclient.Metric{Key: b.keys[k], Value: value(k, step), Timestamp: t0 + int64(step), Step: int64(step)})
		if len(cur.Metrics) == 1000 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return out, flush()
}

// verify reads back every metric history of runID and checks that each key
// has exactly the expected points (all steps, once each, with their values).
func (b *bench) verify(ctx context.Context, runID string) error {
	keys := make(chan int, len(b.keys))
	for k := range b.keys {
		keys <- k
	}
	close(keys)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for k := range keys {
				if err := b.verifyKey(ctx, runID, k); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		if len(errs) > 5 {
			errs = append(errs[:5], fmt.Sprintf("... and %d more keys", len(errs)-5))
		}
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (b *bench) verifyKey(ctx context.Context, runID string, k int) error {
	key := b.keys[k]
	pts, err := mlflowclient.Collect(b.c.Runs.AllMetricHistory(ctx, runID, key, 0))
	if err != nil {
		return fmt.Errorf("%s: reading history: %w", key, err)
	}
	if len(pts) != b.cfg.steps {
		return fmt.Errorf("%s: %d points, want %d", key, len(pts), b.cfg.steps)
	}
	seen := make([]bool, b.cfg.steps)
	for _, p := range pts {
		s := int(p.Step)
		if s < 0 || s >= b.cfg.steps || seen[s] {
			return fmt.Errorf("%s: unexpected or duplicate step %d", key, s)
		}
		seen[s] = true
		if p.Value != value(k, s) {
			return fmt.Errorf("%s step %d: value %v, want %v", key, s, p.Value, value(k, s))
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
