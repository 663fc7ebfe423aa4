package mlflowclient

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
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// alFakeServer is a log-batch endpoint that stores metric points the way MLflow
// does (once per key, timestamp, step and value) and can be slowed down,
// gated, taken down (503) or made to reject a metric key (400).
type alFakeServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	down      bool
	rejectKey string
	delay     time.Duration
	gate      chan struct{} // when set, log-batch requests wait for it to close
	stored    map[string]bool
	received  int      // metric points received in successful requests
	requests  []string // per accepted request: its first metric key ("" when none)
	params    map[string]string
	tags      map[string]string
	attempts  atomic.Int64 // log-batch requests, failed ones included
	healthHit atomic.Int64
}

type alBatchBody struct {
	RunID   string   `json:"run_id"`
	Metrics []Metric `json:"metrics"`
	Params  []Param  `json:"params"`
	Tags    []Tag    `json:"tags"`
}

func newALFakeServer(t *testing.T) *alFakeServer {
	t.Helper()
	f := &alFakeServer{stored: map[string]bool{}, params: map[string]string{}, tags: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *alFakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down, delay, gate, reject := f.down, f.delay, f.gate, f.rejectKey
	f.mu.Unlock()
	switch r.URL.Path {
	case "/health":
		f.healthHit.Add(1)
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "OK")
		return
	case "/api/2.0/mlflow/runs/log-batch":
	default:
		http.NotFound(w, r)
		return
	}
	f.attempts.Add(1)
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	time.Sleep(delay)
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error_code":"TEMPORARILY_UNAVAILABLE","message":"down"}`)
		return
	}
	var b alBatchBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error_code":"MALFORMED_REQUEST","message":%q}`, err.Error())
		return
	}
	for _, m := range b.Metrics {
		if m.Key == reject && reject != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad metric"}`)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	first := ""
	if len(b.Metrics) > 0 {
		first = b.Metrics[0].Key
	}
	f.requests = append(f.requests, first)
	for _, m := range b.Metrics {
		f.stored[fmt.Sprintf("%s/%d/%d/%v", m.Key, m.Timestamp, m.Step, m.Value)] = true
		f.received++
	}
	for _, p := range b.Params {
		f.params[p.Key] = p.Value
	}
	for _, tg := range b.Tags {
		f.tags[tg.Key] = tg.Value
	}
	_, _ = io.WriteString(w, "{}")
}

func (f *alFakeServer) set(fn func(f *alFakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// counts returns the distinct points stored and the points received.
func (f *alFakeServer) counts() (stored, received int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored), f.received
}

func (f *alFakeServer) has(key string, step int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.stored {
		if strings.HasPrefix(k, key+"/") && strings.Contains(k, fmt.Sprintf("/%d/", step)) {
			return true
		}
	}
	return false
}

// alRetry gives up after one quick retry so tests reach the journal fast.
var alRetry = RetryPolicy{MaxRetries: 1, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}

func (f *alFakeServer) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(WithEnv(func(string) (string, bool) { return "", false }),
		WithTrackingURI(f.srv.URL), WithRetryPolicy(alRetry), WithTimeout(5*time.Second),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.http.GetClient().CloseIdleConnections() })
	return c
}

const alRunID = "0123456789abcdef0123456789abcdef"

func newTestAsyncLogger(t *testing.T, c *Client, opts AsyncLoggerOptions) *AsyncLogger {
	t.Helper()
	if opts.JournalPath == "" {
		opts.JournalPath = filepath.Join(t.TempDir(), "journal.jsonl")
	}
	l, err := NewAsyncLogger(c, alRunID, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// alNoLeaks records the goroutine count and, at cleanup, waits for it to come
// back (after the logger, client connections and server are closed).
func alNoLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func alEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alPoint(key string, step int64) Metric {
	return Metric{Key: key, Value: float64(step) / 7, Timestamp: 1_700_000_000_000 + step, Step: step}
}

func TestAsyncLoggerConcurrentCallers(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 100, QueueSize: 50, Concurrency: 4})
	ctx := context.Background()
	const callers, per = 8, 500
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			key := fmt.Sprintf("m%d", g)
			for i := range per {
				if err := l.LogMetric(ctx, alPoint(key, int64(i))); err != nil {
					t.Error(err)
					return
				}
			}
			if err := l.LogParam(ctx, key, "v"); err != nil {
				t.Error(err)
			}
			if err := l.SetTag(ctx, "tag."+key, "t"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	stored, received := f.counts()
	if stored != callers*per || received != callers*per {
		t.Errorf("server stored %d, received %d metric points; want %d each", stored, received, callers*per)
	}
	f.mu.Lock()
	if len(f.params) != callers || len(f.tags) != callers {
		t.Errorf("params %d, tags %d; want %d each", len(f.params), len(f.tags), callers)
	}
	f.mu.Unlock()
	st := l.Stats()
	if st.PointsSent != callers*per+2*callers || st.Journaled != 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Batches < callers*per/100 {
		t.Errorf("batches %d, want at least %d", st.Batches, callers*per/100)
	}
	if _, err := os.Stat(l.JournalPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal created although the server never failed: %v", err)
	}
	if err := l.LogMetric(ctx, alPoint("late", 1)); !errors.Is(err, ErrLoggerClosed) {
		t.Errorf("LogMetric after Close = %v, want ErrLoggerClosed", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestAsyncLoggerBackpressure(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release() // a failing test must not leave the server hung
	f.set(func(f *alFakeServer) { f.gate = gate })
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 1, QueueSize: 2, Concurrency: 1, FlushInterval: time.Hour})
	ctx := context.Background()

	const n = 20
	var queued atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if err := l.LogMetric(ctx, alPoint("m", int64(i))); err != nil {
				t.Error(err)
				return
			}
			queued.Add(1)
		}
	}()
	// One request in flight (gated), one batch waiting for a sender, two
	// points in the queue: the logging goroutine must be stuck at about 4.
	time.Sleep(200 * time.Millisecond)
	if q := queued.Load(); q >= n || q > 5 {
		t.Fatalf("%d of %d points queued with the server stalled: LogMetric did not block", q, n)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := l.LogMetric(short, alPoint("other", 1))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LogMetric on a full queue with an expiring ctx = %v, want DeadlineExceeded", err)
	}

	release()
	<-done
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stored, received := f.counts()
	if stored != n || received != n {
		t.Errorf("stored %d, received %d; want %d: points were dropped", stored, received, n)
	}
	for i := range int64(n) {
		if !f.has("m", i) {
			t.Errorf("step %d missing", i)
		}
	}
}

func TestAsyncLoggerFlushBySize(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 10, FlushInterval: time.Hour})
	ctx := context.Background()
	for i := range 25 {
		if err := l.LogMetric(ctx, alPoint("m", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	alEventually(t, "two full batches", func() bool { s, _ := f.counts(); return s == 20 })
	time.Sleep(50 * time.Millisecond)
	if s, _ := f.counts(); s != 20 {
		t.Fatalf("a partial batch was sent before the interval or a Flush: %d points", s)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.counts(); s != 25 {
		t.Fatalf("after Flush the server has %d points, want 25", s)
	}
	if b := l.Stats().Batches; b != 3 {
		t.Errorf("batches = %d, want 3", b)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncLoggerFlushByInterval(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{FlushInterval: 30 * time.Millisecond})
	ctx := context.Background()
	start := time.Now()
	for i := range 3 {
		if err := l.LogMetric(ctx, alPoint("m", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	alEventually(t, "the interval flush", func() bool { s, _ := f.counts(); return s == 3 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("interval flush took %v", d)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncLoggerFlushWaits(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	f.set(func(f *alFakeServer) { f.delay = 30 * time.Millisecond })
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 10, Concurrency: 2, FlushInterval: time.Hour})
	ctx := context.Background()
	for round := range 2 {
		for i := range 55 {
			if err := l.LogMetric(ctx, alPoint("m", int64(round*100+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// No polling: Flush returned, so the server has every point.
		if s, r := f.counts(); s != 55*(round+1) || r != s {
			t.Fatalf("round %d: after Flush the server stored %d, received %d; want %d", round, s, r, 55*(round+1))
		}
	}
	// A Flush with nothing pending returns at once.
	start := time.Now()
	if err := l.Flush(ctx); err != nil || time.Since(start) > time.Second {
		t.Fatalf("empty Flush = %v after %v", err, time.Since(start))
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAsyncLoggerServerErrorSurfaced(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	f.set(func(f *alFakeServer) { f.rejectKey = "bad" })
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 5, Concurrency: 1, FlushInterval: time.Hour})
	ctx := context.Background()
	for i := range 5 {
		_ = l.LogMetric(ctx, alPoint("good", int64(i)))
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_ = l.LogMetric(ctx, alPoint("bad", int64(i)))
	}
	err := l.Flush(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeInvalidParameterValue || ae.StatusCode != http.StatusBadRequest {
		t.Fatalf("Flush = %v, want an *APIError INVALID_PARAMETER_VALUE", err)
	}
	if !strings.Contains(err.Error(), "5 points rejected") {
		t.Errorf("error does not say how many points were lost: %v", err)
	}
	if !IsInvalidParameter(l.Err()) {
		t.Errorf("Err() = %v", l.Err())
	}
	if n := f.attempts.Load(); n != 2 {
		t.Errorf("%d requests; a 400 must not be retried (want 2)", n)
	}
	st := l.Stats()
	if st.Rejected != 5 || st.PointsSent != 5 || st.Journaled != 0 {
		t.Errorf("stats %+v", st)
	}
	// Errors are returned once per Flush; Err keeps the first.
	if err := l.Flush(ctx); err != nil {
		t.Errorf("second Flush = %v, want nil", err)
	}
	if l.Err() == nil {
		t.Error("Err() forgot the error")
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.JournalPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected batch was journaled: %v", err)
	}
}

func TestAsyncLoggerSpillsAndReplays(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	f.set(func(f *alFakeServer) { f.down = true })
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 10, Concurrency: 2, FlushInterval: time.Hour})
	ctx := context.Background()
	for i := range 30 {
		if err := l.LogMetric(ctx, alPoint("m", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.LogParam(ctx, "lr", "0.1"); err != nil {
		t.Fatal(err)
	}
	// Journaled points count as flushed: Flush returns without error.
	if err := l.Flush(ctx); err != nil {
		t.Fatalf("Flush with the server down = %v", err)
	}
	st := l.Stats()
	if st.Journaled != 31 || st.InJournal != 31 || st.PointsSent != 0 {
		t.Fatalf("stats with the server down: %+v", st)
	}
	if st.Retries == 0 {
		t.Errorf("the retry policy was not used before journaling: %+v", st)
	}
	recs := alReadJournal(t, l.JournalPath())
	if len(recs) != 4 {
		t.Fatalf("journal has %d records, want 4 (3 metric batches + params)", len(recs))
	}
	for _, r := range recs {
		if r.RunID != alRunID || r.Acked != 0 || r.ID == "" {
			t.Errorf("bad journal record %+v", r)
		}
	}
	if s, _ := f.counts(); s != 0 {
		t.Fatalf("server stored %d points while down", s)
	}

	f.set(func(f *alFakeServer) { f.down = false })
	alEventually(t, "the replay", func() bool { s, _ := f.counts(); return s == 30 })
	alEventually(t, "the journal to empty", func() bool { return l.Stats().InJournal == 0 })
	if fi, err := os.Stat(l.JournalPath()); err != nil || fi.Size() != 0 {
		t.Errorf("journal after replay: %v, %v (want an empty file)", fi, err)
	}
	f.mu.Lock()
	if f.params["lr"] != "0.1" {
		t.Errorf("param not replayed: %v", f.params)
	}
	f.mu.Unlock()
	// Back online: new points go straight to the server.
	for i := 30; i < 40; i++ {
		_ = l.LogMetric(ctx, alPoint("m", int64(i)))
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st = l.Stats()
	if s, r := f.counts(); s != 40 || r != 40 {
		t.Errorf("stored %d, received %d; want 40", s, r)
	}
	if st.Replayed != 31 || st.Journaled != 31 || st.PointsSent != 41 {
		t.Errorf("final stats %+v", st)
	}
	if _, err := os.Stat(l.JournalPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty journal not removed at Close: %v", err)
	}
}

func TestAsyncLoggerCloseWithServerDown(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	f.set(func(f *alFakeServer) { f.down = true })
	c := f.client(t)
	l := newTestAsyncLogger(t, c, AsyncLoggerOptions{BatchSize: 10, FlushInterval: time.Hour})
	ctx := context.Background()
	for i := range 25 {
		_ = l.LogMetric(ctx, alPoint("m", int64(i)))
	}
	err := l.Close(ctx)
	var je *JournalError
	if !errors.As(err, &je) || je.Points != 25 || je.Records != 3 || je.Path != l.JournalPath() {
		t.Fatalf("Close = %v, want a *JournalError for 25 points in 3 records at %s", err, l.JournalPath())
	}
	if !strings.Contains(err.Error(), "25 points") || !strings.Contains(err.Error(), l.JournalPath()) {
		t.Errorf("error does not say how many points and where: %v", err)
	}
	if len(alReadJournal(t, l.JournalPath())) != 3 {
		t.Fatal("journal lost records")
	}

	// Still down: ReplayJournal keeps everything.
	n, err := ReplayJournal(ctx, c, l.JournalPath())
	if err == nil || n != 0 || len(alReadJournal(t, l.JournalPath())) != 3 {
		t.Fatalf("ReplayJournal with the server down = %d, %v", n, err)
	}
	f.set(func(f *alFakeServer) { f.down = false })
	n, err = ReplayJournal(ctx, c, l.JournalPath())
	if err != nil || n != 25 {
		t.Fatalf("ReplayJournal = %d, %v; want 25, nil", n, err)
	}
	if s, _ := f.counts(); s != 25 {
		t.Errorf("server has %d points after ReplayJournal, want 25", s)
	}
	if _, err := os.Stat(l.JournalPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal not removed after a full replay: %v", err)
	}
	if n, err := ReplayJournal(ctx, c, l.JournalPath()); n != 0 || err != nil {
		t.Errorf("ReplayJournal of a missing file = %d, %v", n, err)
	}
}

func TestAsyncLoggerReplaysJournalAtStart(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	c := f.client(t)
	path := filepath.Join(t.TempDir(), "run.jsonl")
	ctx := context.Background()

	// An earlier process journaled 2 batches and died.
	f.set(func(f *alFakeServer) { f.down = true })
	l1 := newTestAsyncLogger(t, c, AsyncLoggerOptions{BatchSize: 10, JournalPath: path})
	for i := range 20 {
		_ = l1.LogMetric(ctx, alPoint("old", int64(i)))
	}
	var je *JournalError
	if err := l1.Close(ctx); !errors.As(err, &je) || je.Points != 20 {
		t.Fatalf("first Close = %v", err)
	}

	f.set(func(f *alFakeServer) { f.down = false })
	l2 := newTestAsyncLogger(t, c, AsyncLoggerOptions{BatchSize: 10, JournalPath: path})
	if _, err := NewAsyncLogger(c, alRunID, AsyncLoggerOptions{JournalPath: path}); err == nil {
		t.Error("a second logger on the same journal was allowed")
	}
	for i := range 10 {
		_ = l2.LogMetric(ctx, alPoint("new", int64(i)))
	}
	if err := l2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.counts(); s != 30 {
		t.Fatalf("server has %d points, want 30", s)
	}
	f.mu.Lock()
	order := strings.Join(f.requests, ",")
	f.mu.Unlock()
	if order != "old,old,new" {
		t.Errorf("request order %s; the journal must be replayed before new points", order)
	}
	// New points logged while the old journal was replayed queue behind it.
	if st := l2.Stats(); st.Replayed != 20+st.Journaled || st.PointsSent != 30 {
		t.Errorf("stats %+v", st)
	}
}

func TestReplayJournalRejectedRecord(t *testing.T) {
	f := newALFakeServer(t)
	c := f.client(t)
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := openJournal(path, c.Logger())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "bad", "b"} {
		bodies, err := chunkBatch(alRunID, Batch{Metrics: []Metric{alPoint(key, 1), alPoint(key, 2)}}, serverBatchLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.append(alRunID, bodies[0], 2); err != nil {
			t.Fatal(err)
		}
	}
	_ = j.close()
	f.set(func(f *alFakeServer) { f.rejectKey = "bad" })
	n, err := ReplayJournal(context.Background(), c, path)
	if n != 4 || !IsInvalidParameter(err) {
		t.Fatalf("ReplayJournal = %d, %v; want 4 and the INVALID_PARAMETER_VALUE", n, err)
	}
	rej := alReadJournal(t, path+".rejected")
	if len(rej) != 1 || !bytes.Contains(rej[0].Body, []byte(`"bad"`)) {
		t.Fatalf("rejected file holds %+v", rej)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal not removed: %v", err)
	}
}

func TestJournalTornTailAndProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	j, err := openJournal(path, log)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		body := fmt.Appendf(nil, `{"run_id":"r","metrics":[{"key":"m","value":%d,"timestamp":1,"step":%d}]}`, i, i)
		if err := j.append("r", body, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.done(recAcked); err != nil { // first record sent
		t.Fatal(err)
	}
	_ = j.close()
	// A crash in the middle of a fourth append.
	fh, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = fh.WriteString(`{"acked":0,"id":"x","run_id":"r","points":1,"body":{"run_`)
	_ = fh.Close()

	j, err = openJournal(path, log)
	if err != nil {
		t.Fatal(err)
	}
	if j.pending() != 2 || j.points != 2 {
		t.Fatalf("reopened journal: %d records, %d points; want 2, 2", j.pending(), j.points)
	}
	_, line, _, err := j.head()
	if err != nil || !bytes.Contains(line.Body, []byte(`"step":1`)) {
		t.Fatalf("head = %s, %v; want the second record", line.Body, err)
	}
	// New records go after the cut, not after the torn bytes.
	if err := j.append("r", []byte(`{"run_id":"r"}`), 0); err != nil {
		t.Fatal(err)
	}
	_ = j.close()
	if recs := alReadJournal(t, path); len(recs) != 4 || recs[0].Acked != 1 {
		t.Fatalf("journal after reopen: %+v", recs)
	}

	// A corrupt record in the middle is an error, not silently skipped.
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[1] = []byte("garbage\n")
	_ = os.WriteFile(path, bytes.Join(lines, nil), 0o600)
	if _, err := openJournal(path, log); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("openJournal of a corrupt file = %v", err)
	}
}

func TestAsyncLoggerCloseDeadlineJournals(t *testing.T) {
	alNoLeaks(t)
	f := newALFakeServer(t)
	gate := make(chan struct{})
	defer close(gate)
	f.set(func(f *alFakeServer) { f.gate = gate }) // the server hangs
	l := newTestAsyncLogger(t, f.client(t), AsyncLoggerOptions{BatchSize: 5, Concurrency: 2})
	for i := range 20 {
		_ = l.LogMetric(context.Background(), alPoint("m", int64(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past its deadline", d)
	}
	var je *JournalError
	if !errors.As(err, &je) || je.Points != 20 {
		t.Fatalf("Close = %v, want all 20 points journaled", err)
	}
}

func TestAsyncLoggerValidation(t *testing.T) {
	f := newALFakeServer(t)
	c := f.client(t)
	if _, err := NewAsyncLogger(c, "not a run id!", AsyncLoggerOptions{}); err == nil {
		t.Error("bad run id accepted")
	}
	if _, err := NewAsyncLogger(c, alRunID, AsyncLoggerOptions{QueueSize: -1}); err == nil {
		t.Error("negative queue size accepted")
	}
	l := newTestAsyncLogger(t, c, AsyncLoggerOptions{})
	ctx := context.Background()
	var ve *ValidationError
	if err := l.LogMetric(ctx, Metric{Key: "../x", Value: 1}); !errors.As(err, &ve) {
		t.Errorf("bad key: %v", err)
	}
	if err := l.LogMetric(ctx, Metric{Key: "m", Value: 1, RunID: "otherrun"}); !errors.As(err, &ve) {
		t.Errorf("other run: %v", err)
	}
	if err := l.LogMetrics(ctx, alPoint("ok", 1), Metric{Key: ""}); !errors.As(err, &ve) {
		t.Errorf("LogMetrics with a bad point: %v", err)
	}
	if err := l.LogParam(ctx, "lr", "0.1"); err != nil {
		t.Fatal(err)
	}
	if err := l.LogParam(ctx, "lr", "0.1"); err != nil {
		t.Errorf("same param value again: %v", err)
	}
	if err := l.LogParam(ctx, "lr", "0.2"); !errors.As(err, &ve) {
		t.Errorf("changed param: %v", err)
	}
	if err := l.SetTag(ctx, "t", strings.Repeat("x", maxTagValueLength+1)); !errors.As(err, &ve) {
		t.Errorf("long tag: %v", err)
	}
	// A zero timestamp becomes now.
	before := time.Now().UnixMilli()
	if err := l.LogMetric(ctx, Metric{Key: "now", Value: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stored) != 1 || f.params["lr"] != "0.1" {
		t.Fatalf("stored %v, params %v", f.stored, f.params)
	}
	for k := range f.stored {
		var ts int64
		_, _ = fmt.Sscanf(strings.Split(k, "/")[1], "%d", &ts)
		if ts < before || ts > time.Now().UnixMilli() {
			t.Errorf("timestamp %d not now", ts)
		}
	}
	if err := l.Flush(ctx); !errors.Is(err, ErrLoggerClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
}

func TestCountEntities(t *testing.T) {
	b := Batch{Metrics: []Metric{{Key: `{"key":`, Value: 1}}}
	for i := range 150 {
		b.Params = append(b.Params, Param{Key: fmt.Sprintf("p%d", i), Value: `{"key":"x"}`})
	}
	for i := range 30 {
		b.Tags = append(b.Tags, Tag{Key: fmt.Sprintf("t%d", i), Value: "v"})
	}
	bodies, err := chunkBatch(alRunID, b, serverBatchLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) < 2 {
		t.Fatalf("want a multi-request batch, got %d", len(bodies))
	}
	total := 0
	for _, body := range bodies {
		var fb alBatchBody
		if err := json.Unmarshal(body, &fb); err != nil {
			t.Fatal(err)
		}
		if n := countEntities(body); n != len(fb.Metrics)+len(fb.Params)+len(fb.Tags) {
			t.Errorf("countEntities = %d, body holds %d", n, len(fb.Metrics)+len(fb.Params)+len(fb.Tags))
		}
		total += countEntities(body)
	}
	if total != b.Len() {
		t.Errorf("counted %d entities, batch has %d", total, b.Len())
	}
}

func alReadJournal(t *testing.T, path string) []journalLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []journalLine
	for line := range bytes.Lines(data) {
		rec, err := parseJournalLine(line)
		if err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// BenchmarkAsyncLoggerLogMetric measures the client side: queueing, batching
// and encoding, against a server that discards what it gets.
func BenchmarkAsyncLoggerLogMetric(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c, err := New(WithEnv(func(string) (string, bool) { return "", false }), WithTrackingURI(srv.URL))
	if err != nil {
		b.Fatal(err)
	}
	l, err := NewAsyncLogger(c, alRunID, AsyncLoggerOptions{JournalPath: filepath.Join(b.TempDir(), "j")})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var i int64
		for pb.Next() {
			i++
			if err := l.LogMetric(ctx, Metric{Key: "loss", Value: float64(i), Timestamp: 1 + i, Step: i}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(l.Stats().PointsSent)/b.Elapsed().Seconds(), "points/s")
}
