package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// The AsyncLogger's journal replay relies on MLflow storing a metric point
// once per (key, timestamp, step, value) and accepting a param re-sent with
// the same value. Pin that down on the real server.
func TestMLflowResentBatchDoesNotDuplicate(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "logger-dedup")})
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, SkipSystemTags: true})
	require.NoError(t, err)
	id := run.Info.RunID

	b := mlflowclient.Batch{
		Metrics: []mlflowclient.Metric{
			{Key: "m", Value: 1.5, Timestamp: 1000, Step: 1},
			{Key: "m", Value: 2.5, Timestamp: 1001, Step: 2},
		},
		Params: []mlflowclient.Param{{Key: "lr", Value: "0.1"}},
		Tags:   []mlflowclient.Tag{{Key: "t", Value: "v"}},
	}
	require.NoError(t, c.Runs.LogBatch(ctx, id, b))
	require.NoError(t, c.Runs.LogBatch(ctx, id, b), "re-sending a batch (same param value) must succeed")
	// A batch overlapping the stored points: only the new one is added.
	b.Metrics = append(b.Metrics, mlflowclient.Metric{Key: "m", Value: 3.5, Timestamp: 1002, Step: 3})
	require.NoError(t, c.Runs.LogBatch(ctx, id, b))

	hist, err := mlflowclient.Collect(c.Runs.AllMetricHistory(ctx, id, "m", 0))
	require.NoError(t, err)
	steps := make([]int64, 0, len(hist))
	for _, m := range hist {
		steps = append(steps, m.Step)
	}
	assert.ElementsMatch(t, []int64{1, 2, 3}, steps, "each point stored exactly once")

	err = c.Runs.LogBatch(ctx, id, mlflowclient.Batch{Params: []mlflowclient.Param{{Key: "lr", Value: "0.2"}}})
	assert.True(t, mlflowclient.IsInvalidParameter(err), "changing a param: %v", err)
}

// throwawayMLflow is an MLflow server of the test's own, on its own sqlite
// file, that the test can kill and restart.
type throwawayMLflow struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func (s *throwawayMLflow) uri() string { return "http://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *throwawayMLflow) start(t *testing.T, timeout time.Duration) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(s.bin, "server",
		"--backend-store-uri", "sqlite:///"+filepath.Join(s.dir, "db"),
		"--artifacts-destination", filepath.Join(s.dir, "a"),
		"--host", "127.0.0.1", "--port", strconv.Itoa(s.port), "--workers", "1")
	// No background job runner: fewer processes, faster start.
	cmd.Env = append(os.Environ(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	// mlflow server spawns uvicorn workers: give them a process group to kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(timeout)
	for {
		if testenv.Healthy(context.Background(), s.uri()) == nil {
			return
		}
		select {
		case <-exited:
			t.Fatalf("mlflow server exited during startup:\n%s", s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			t.Fatalf("mlflow server not healthy after %v:\n%s", timeout, s.logTail())
		}
	}
}

// kill SIGKILLs the whole process group, like a crash, and waits for it.
func (s *throwawayMLflow) kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for range 100 { // cmd.Wait runs in start's goroutine; wait for the group to go
		if syscall.Kill(-s.cmd.Process.Pid, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd = nil
}

func (s *throwawayMLflow) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// An AsyncLogger keeps every point through a server crash: points logged
// while the server is down go to the journal and are replayed when it is
// back, and the server ends up with each point exactly once.
func TestAsyncLoggerSurvivesServerRestart(t *testing.T) {
	bin := testenv.MLflowBin(t)
	dir := t.TempDir()
	srv := &throwawayMLflow{bin: bin, dir: dir, port: freePort(t)}
	srv.start(t, 60*time.Second) // a fresh sqlite DB runs its migrations first
	t.Cleanup(srv.kill)

	c, err := mlflowclient.New(
		mlflowclient.WithEnv(func(string) (string, bool) { return "", false }),
		mlflowclient.WithTrackingURI(srv.uri()),
		// A small retry budget so the outage reaches the journal quickly.
		mlflowclient.WithRetryPolicy(mlflowclient.RetryPolicy{MaxRetries: 2, MinWait: 50 * time.Millisecond, MaxWait: 200 * time.Millisecond}),
		mlflowclient.WithTimeout(10*time.Second))
	require.NoError(t, err)
	ctx := context.Background()
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: "logger-restart"})
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID, RunName: "restart", SkipSystemTags: true})
	require.NoError(t, err)
	runID := run.Info.RunID

	journal := filepath.Join(dir, "journal", runID+".jsonl")
	l, err := mlflowclient.NewAsyncLogger(c, runID, mlflowclient.AsyncLoggerOptions{
		BatchSize: 500, FlushInterval: 200 * time.Millisecond, JournalPath: journal,
	})
	require.NoError(t, err)

	const steps = 10_000 // × 2 keys = 20,000 points
	keys := []string{"loss", "acc"}
	value := func(k int, step int64) float64 { return float64(k+1)*1e6 + float64(step)/3 }
	base := time.Now().UnixMilli()
	crashAt, restartAt := int64(4000), int64(7000)
	crash, crashed := make(chan struct{}), make(chan struct{})
	restart := make(chan struct{})
	logErr := make(chan error, 1)
	var logged atomic.Int64
	go func() {
		logErr <- func() error {
			for step := range int64(steps) {
				switch step {
				case crashAt:
					close(crash)
					<-crashed
					// Logged during the outage: must survive too.
					if err := l.LogParam(ctx, "lr", "0.01"); err != nil {
						return err
					}
					if err := l.SetTag(ctx, "phase", "outage"); err != nil {
						return err
					}
				case restartAt:
					close(restart)
				}
				for k, key := range keys {
					m := mlflowclient.Metric{Key: key, Value: value(k, step), Timestamp: base + step, Step: step}
					if err := l.LogMetric(ctx, m); err != nil {
						return err
					}
					logged.Add(1)
				}
				if step%100 == 99 { // a training loop: ~3 s for the outage part
					time.Sleep(100 * time.Millisecond)
				}
			}
			return nil
		}()
	}()

	<-crash
	require.Greater(t, l.Stats().PointsSent, int64(0), "some points reached the server before the crash")
	srv.kill()
	close(crashed)
	<-restart
	// Points logged while down are journaled, not lost, and nothing blocks.
	require.Eventually(t, func() bool { return l.Stats().Journaled > 0 }, 10*time.Second, 50*time.Millisecond)
	srv.start(t, 60*time.Second) // same port, same sqlite file
	require.NoError(t, <-logErr)
	require.EqualValues(t, 2*steps, logged.Load())

	closeCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, l.Close(closeCtx))
	st := l.Stats()
	t.Logf("stats: %+v", st)
	assert.Greater(t, st.Journaled, int64(0))
	assert.Equal(t, st.Journaled, st.Replayed, "every journaled point was replayed")
	assert.Zero(t, st.InJournal)
	assert.Zero(t, st.Rejected)
	_, err = os.Stat(journal)
	assert.True(t, errors.Is(err, os.ErrNotExist), "journal removed once replayed: %v", err)

	for k, key := range keys {
		hist, err := mlflowclient.Collect(c.Runs.AllMetricHistory(ctx, runID, key, 0))
		require.NoError(t, err)
		seen := make(map[int64]int, steps)
		for _, m := range hist {
			seen[m.Step]++
			if m.Value != value(k, m.Step) || m.Timestamp != base+m.Step {
				t.Errorf("%s step %d: value %v ts %d, want %v ts %d", key, m.Step, m.Value, m.Timestamp, value(k, m.Step), base+m.Step)
			}
		}
		var missing, dup bytes.Buffer
		for step := range int64(steps) {
			switch n := seen[step]; {
			case n == 0 && missing.Len() < 200:
				fmt.Fprintf(&missing, "%d ", step)
			case n > 1 && dup.Len() < 200:
				fmt.Fprintf(&dup, "%d×%d ", step, n)
			}
		}
		assert.Equal(t, steps, len(hist), "%s: history length", key)
		assert.Empty(t, missing.String(), "%s: missing steps", key)
		assert.Empty(t, dup.String(), "%s: duplicated steps", key)
	}
	got, err := c.Runs.Get(ctx, runID)
	require.NoError(t, err)
	lr, _ := got.Param("lr")
	phase, _ := got.Tag("phase")
	assert.Equal(t, "0.01", lr)
	assert.Equal(t, "outage", phase)
}
