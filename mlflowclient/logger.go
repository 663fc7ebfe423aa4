package mlflowclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLoggerClosed is returned by an AsyncLogger used after Close.
var ErrLoggerClosed = errors.New("mlflowclient: async logger is closed")

// AsyncLoggerOptions configure an AsyncLogger. Zero fields take the defaults.
type AsyncLoggerOptions struct {
	// QueueSize bounds the points waiting to be batched (default 10000). When
	// the queue is full, Log calls block (backpressure); nothing is dropped.
	QueueSize int
	// BatchSize is how many pending points trigger a flush (default 1000, the
	// server's per-request metric limit). Requests never exceed the server's
	// limits whatever this is.
	BatchSize int
	// FlushInterval is the longest a point waits before it is sent (default 1s).
	FlushInterval time.Duration
	// Concurrency is how many log-batch requests may be in flight (default 4).
	// Requests may then complete out of order. For metrics this does not
	// matter: the server keys a metric's history by step and timestamp, not by
	// arrival. Params are immutable and tags are last-write-wins, so a caller
	// setting the same tag key repeatedly and relying on the final value should
	// use Concurrency 1 (or Flush between the two SetTag calls).
	Concurrency int
	// JournalPath is where requests spill when the server stays unreachable
	// past the client's retry budget (default
	// os.UserCacheDir()/capflow/mlflow-journal/<run_id>.jsonl). One logger at a
	// time may use a path in this process; the file is not locked against
	// other processes.
	JournalPath string
	// Logger defaults to the client's logger.
	Logger *slog.Logger
}

// AsyncLoggerStats count what an AsyncLogger did. "Points" are metrics,
// params and tags alike.
type AsyncLoggerStats struct {
	PointsSent int64 // acknowledged by the server, replayed ones included
	Batches    int64 // log-batch requests acknowledged, replays included
	Retries    int64 // request attempts repeated by the client's retry policy
	Rejected   int64 // refused by the server for good (see Err); not journaled
	Journaled  int64 // written to the journal
	Replayed   int64 // sent from the journal (a subset of PointsSent)
	InJournal  int64 // in the journal now, waiting for the server
}

// JournalError reports points left in the journal by Close because the
// server stayed unreachable. Nothing is lost: the next AsyncLogger for the run
// (with the same JournalPath) replays them first, or call ReplayJournal.
type JournalError struct {
	Path    string
	Points  int
	Records int
	Err     error // the last failure talking to the server
}

func (e *JournalError) Error() string {
	why := "the server is unreachable"
	if e.Err != nil {
		why += ": " + e.Err.Error()
	}
	return fmt.Sprintf("mlflowclient: async logger: %d points (%d requests) are journaled in %s (%s); the next logger for the run replays them first, or call ReplayJournal",
		e.Points, e.Records, e.Path, why)
}

func (e *JournalError) Unwrap() error { return e.Err }

// AsyncLogger logs metrics, params and tags of one run in the background, in
// batches, for training loops that must not wait on the network. It is safe
// for concurrent use.
//
// Delivery: every point ends up on the server, in the journal file, or in an
// error returned by Flush/Close/Err. Server errors that would repeat
// (INVALID_PARAMETER_VALUE, a deleted run, ...) drop that request's points and
// are reported. When a request still fails transiently after the client's
// retries (connection refused, 5xx), it is appended to the journal, and so are
// all later requests while the logger probes the server with backoff; once the
// server answers, the journal is replayed in order before anything new is
// sent. Re-sending is safe, which matters because a request whose answer was
// lost (server killed after committing) is journaled and sent again, and a
// journal record acknowledged just before a crash, not yet marked done, is
// replayed by the next logger: MLflow (verified against 3.x with sqlite)
// stores a metric point once per (key, timestamp, step, value), accepts a
// param re-sent with the same value, and overwrites tags. The flip side, which
// is MLflow's and not the logger's: two points with the same key, timestamp,
// step and value are stored once.
type AsyncLogger struct {
	c     *Client
	runID string
	opts  AsyncLoggerOptions
	log   *slog.Logger

	queue chan entry
	jobs  chan job

	sendMu    sync.RWMutex // read-held while enqueuing; Close write-locks it to stop new entries
	closed    bool
	stopping  chan struct{} // closed when Close starts: wakes blocked Log calls
	closeOnce sync.Once
	closeErr  error

	// sendCtx is cancelled only when Close's context expires: sends in flight
	// then fail and spill to the journal, so Close returns promptly.
	sendCtx context.Context
	abort   context.CancelFunc

	loopDone   chan struct{}
	replayDone chan struct{}
	final      chan struct{} // closed once no request can spill any more
	kick       chan struct{} // wakes the replayer

	paramMu sync.Mutex
	params  map[string]string // values logged, to refuse a changed one at once

	// Jobs are numbered in dispatch order; Flush waits until all jobs up to
	// its mark are done (sent, journaled or rejected).
	progMu   sync.Mutex
	doneUpTo uint64
	finished map[uint64]bool
	waiters  []waiter

	errMu   sync.Mutex
	first   error
	errs    []error // since the last Flush
	dropped int     // errors beyond maxHeldErrors since the last Flush

	jmu     sync.Mutex // guards j, offline and lastErr
	j       *journal   // nil until something spills
	jpath   string
	offline bool // requests go to the journal, which holds unsent records
	lastErr error

	sent, batches, retries, rejected, journaled, replayed atomic.Int64
}

type entryKind uint8

const (
	entryMetric entryKind = iota
	entryParam
	entryTag
	entryFlush
	entryStop
)

type entry struct {
	kind entryKind
	m    Metric // metric; Key/value of a param or tag use m.Key and v
	v    string
	ack  chan struct{}
}

type job struct {
	seq uint64
	b   Batch
}

type waiter struct {
	mark uint64
	ack  chan struct{}
}

const (
	maxHeldErrors = 20
	probeMinWait  = 100 * time.Millisecond
	probeMaxWait  = 5 * time.Second
	probeTimeout  = 5 * time.Second
)

// journalsInUse stops two loggers in one process from writing one journal.
var journalsInUse sync.Map

// NewAsyncLogger starts a logger for run runID. A journal left for the run by
// an earlier process (same JournalPath) is replayed before anything new is sent.
func NewAsyncLogger(c *Client, runID string, opts AsyncLoggerOptions) (*AsyncLogger, error) {
	if c == nil {
		return nil, &ConfigError{Field: "client", Reason: "is nil"}
	}
	if err := validateRunID(runID); err != nil {
		return nil, err
	}
	if opts.QueueSize < 0 || opts.BatchSize < 0 || opts.FlushInterval < 0 || opts.Concurrency < 0 {
		return nil, &ConfigError{Field: "async logger options", Reason: "QueueSize, BatchSize, FlushInterval and Concurrency must not be negative"}
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 10000
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = maxMetricsPerBatch
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = time.Second
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 4
	}
	if opts.Logger == nil {
		opts.Logger = c.Logger()
	}
	if opts.JournalPath == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		opts.JournalPath = filepath.Join(dir, "capflow", "mlflow-journal", runID+".jsonl")
	}
	path, err := filepath.Abs(opts.JournalPath)
	if err != nil {
		return nil, &ConfigError{Field: "journal path", Reason: err.Error()}
	}
	if _, busy := journalsInUse.LoadOrStore(path, true); busy {
		return nil, &ConfigError{Field: "journal path", Reason: path + " is used by another AsyncLogger in this process"}
	}

	l := &AsyncLogger{
		c: c, runID: runID, opts: opts, log: opts.Logger,
		queue:      make(chan entry, opts.QueueSize),
		jobs:       make(chan job),
		stopping:   make(chan struct{}),
		loopDone:   make(chan struct{}),
		replayDone: make(chan struct{}),
		final:      make(chan struct{}),
		kick:       make(chan struct{}, 1),
		params:     map[string]string{},
		finished:   map[uint64]bool{},
		jpath:      path,
	}
	l.sendCtx, l.abort = context.WithCancel(context.Background())

	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		j, err := openJournal(path, l.log)
		if err != nil {
			journalsInUse.Delete(path)
			return nil, err
		}
		l.j = j
		if j.pending() > 0 {
			l.offline = true
			l.lastErr = errors.New("journal left by an earlier logger")
			l.log.Info("mlflowclient: async logger: replaying a journal left by an earlier logger before new points",
				"run_id", runID, "path", path, "points", j.points, "requests", j.pending())
		}
	}

	go l.loop()
	go l.replayLoop()
	return l, nil
}

// LogMetric queues one metric point. A zero Timestamp means now. The point is
// validated at once; when the queue is full LogMetric blocks until there is
// room or ctx is done.
func (l *AsyncLogger) LogMetric(ctx context.Context, m Metric) error {
	m, err := l.prepareMetric(m)
	if err != nil {
		return err
	}
	return l.enqueue(ctx, entry{kind: entryMetric, m: m})
}

// LogMetrics queues several points; all are validated before any is queued.
func (l *AsyncLogger) LogMetrics(ctx context.Context, ms ...Metric) error {
	prepared := make([]Metric, len(ms))
	for i, m := range ms {
		p, err := l.prepareMetric(m)
		if err != nil {
			return fmt.Errorf("metrics[%d]: %w", i, err)
		}
		prepared[i] = p
	}
	for i, m := range prepared {
		if err := l.enqueue(ctx, entry{kind: entryMetric, m: m}); err != nil {
			return fmt.Errorf("%d of %d metrics queued: %w", i, len(ms), err)
		}
	}
	return nil
}

func (l *AsyncLogger) prepareMetric(m Metric) (Metric, error) {
	if m.RunID != "" && m.RunID != l.runID {
		return m, &ValidationError{Field: "metric run_id", Value: m.RunID, Reason: "differs from the logger's run " + l.runID}
	}
	m.RunID = "" // the request's run_id applies
	if m.Timestamp == 0 {
		m.Timestamp = time.Now().UnixMilli()
	}
	return m, validateMetric(m)
}

// LogParam queues a param. Params are immutable: a key this logger already
// logged with another value is refused at once with a ValidationError (the
// server would reject the whole request), and re-logging the same value is a
// no-op.
func (l *AsyncLogger) LogParam(ctx context.Context, key, value string) error {
	if err := validateParam(Param{key, value}); err != nil {
		return err
	}
	l.paramMu.Lock()
	old, seen := l.params[key]
	if !seen {
		l.params[key] = value
	}
	l.paramMu.Unlock()
	if seen {
		if old != value {
			return &ValidationError{Field: "param", Value: key, Reason: fmt.Sprintf("already logged with value %q; params are immutable", shorten(old))}
		}
		return nil
	}
	if err := l.enqueue(ctx, entry{kind: entryParam, m: Metric{Key: key}, v: value}); err != nil {
		l.paramMu.Lock()
		delete(l.params, key)
		l.paramMu.Unlock()
		return err
	}
	return nil
}

// SetTag queues a run tag (last value wins).
func (l *AsyncLogger) SetTag(ctx context.Context, key, value string) error {
	if err := validateTag(Tag{key, value}); err != nil {
		return err
	}
	return l.enqueue(ctx, entry{kind: entryTag, m: Metric{Key: key}, v: value})
}

func (l *AsyncLogger) enqueue(ctx context.Context, e entry) error {
	l.sendMu.RLock()
	defer l.sendMu.RUnlock()
	if l.closed {
		return ErrLoggerClosed
	}
	select {
	case l.queue <- e:
		return nil
	default:
	}
	select {
	case l.queue <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.stopping:
		return ErrLoggerClosed
	}
}

// Flush waits until everything logged before the call is on the server or in
// the journal, and returns the errors surfaced since the previous Flush
// (requests the server rejected, journal write failures). Points spilled to
// the journal are not an error: they are replayed when the server is back
// (see Stats and Close).
func (l *AsyncLogger) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	if err := l.enqueue(ctx, entry{kind: entryFlush, ack: ack}); err != nil {
		return err
	}
	select {
	case <-ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.takeErrs()
}

// Close flushes, makes a last attempt to replay the journal, and stops the
// logger. It returns the errors surfaced since the last Flush and, when the
// server is still unreachable, a *JournalError saying how many points are
// journaled and where. When ctx expires first, requests in flight are
// abandoned and journaled (which may take a moment longer). Calling Close
// again returns the same result.
func (l *AsyncLogger) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { l.closeErr = l.close(ctx) })
	return l.closeErr
}

func (l *AsyncLogger) close(ctx context.Context) error {
	close(l.stopping)
	l.sendMu.Lock() // waits for Log calls in progress
	l.closed = true
	l.sendMu.Unlock()

	wait := func(ch <-chan struct{}) {
		select {
		case <-ch:
		case <-ctx.Done():
			l.abort()
			<-ch
		}
	}
	ack := make(chan struct{})
	select {
	case l.queue <- entry{kind: entryStop, ack: ack}:
	case <-ctx.Done():
		l.abort()
		l.queue <- entry{kind: entryStop, ack: ack} // the loop drains quickly now
	}
	wait(l.loopDone)
	close(l.final)
	wait(l.replayDone)
	l.abort()
	defer journalsInUse.Delete(l.jpath)

	errs := []error{l.takeErrs()}
	l.jmu.Lock()
	defer l.jmu.Unlock()
	if l.j == nil {
		return errors.Join(errs...)
	}
	if n := l.j.pending(); n > 0 {
		errs = append(errs, &JournalError{Path: l.jpath, Points: l.j.points, Records: n, Err: l.lastErr})
	}
	if err := l.j.close(); err != nil {
		errs = append(errs, fmt.Errorf("mlflowclient: closing journal: %w", err))
	}
	return errors.Join(errs...)
}

// Err returns the first error the logger hit that retrying cannot fix (a
// request the server rejected, a journal write failure), or nil.
func (l *AsyncLogger) Err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.first
}

// Stats returns the logger's counters.
func (l *AsyncLogger) Stats() AsyncLoggerStats {
	s := AsyncLoggerStats{
		PointsSent: l.sent.Load(), Batches: l.batches.Load(), Retries: l.retries.Load(),
		Rejected: l.rejected.Load(), Journaled: l.journaled.Load(), Replayed: l.replayed.Load(),
	}
	l.jmu.Lock()
	if l.j != nil {
		s.InJournal = int64(l.j.points)
	}
	l.jmu.Unlock()
	return s
}

// JournalPath returns the journal file's path.
func (l *AsyncLogger) JournalPath() string { return l.jpath }

// loop batches queued entries and hands batches to the senders.
func (l *AsyncLogger) loop() {
	defer close(l.loopDone)
	var senders sync.WaitGroup
	for range l.opts.Concurrency {
		senders.Go(func() {
			for jb := range l.jobs {
				l.process(jb)
			}
		})
	}
	tick := time.NewTicker(max(l.opts.FlushInterval/4, time.Millisecond))
	defer tick.Stop()

	var (
		pending Batch
		seq     uint64
		since   time.Time // when the oldest pending point arrived
	)
	dispatch := func() {
		// Params and tags go in their own request: a param the server refuses
		// (another value logged elsewhere) then fails only that request.
		if len(pending.Params)+len(pending.Tags) > 0 {
			seq++
			l.jobs <- job{seq: seq, b: Batch{Params: pending.Params, Tags: pending.Tags}}
		}
		if len(pending.Metrics) > 0 {
			seq++
			l.jobs <- job{seq: seq, b: Batch{Metrics: pending.Metrics}}
		}
		pending = Batch{}
	}
	for {
		select {
		case e := <-l.queue:
			if pending.Len() == 0 {
				since = time.Now()
			}
			switch e.kind {
			case entryMetric:
				if pending.Metrics == nil {
					pending.Metrics = make([]Metric, 0, min(l.opts.BatchSize, maxMetricsPerBatch))
				}
				pending.Metrics = append(pending.Metrics, e.m)
			case entryParam:
				pending.Params = append(pending.Params, Param{e.m.Key, e.v})
			case entryTag:
				pending.Tags = append(pending.Tags, Tag{e.m.Key, e.v})
			case entryFlush:
				dispatch()
				l.addWaiter(seq, e.ack)
			case entryStop:
				dispatch()
				close(l.jobs)
				senders.Wait()
				close(e.ack)
				return
			}
			if pending.Len() >= l.opts.BatchSize || len(pending.Params) >= maxParamsTagsPerBatch || len(pending.Tags) >= maxParamsTagsPerBatch {
				dispatch()
			}
		case now := <-tick.C:
			// Only points that have waited a whole interval are sent early: under
			// load, batches fill by size and no half-empty request goes out.
			if pending.Len() > 0 && now.Sub(since) >= l.opts.FlushInterval {
				dispatch()
			}
		}
	}
}

// process sends one batch: each request goes to the server, or to the journal
// while the server is unreachable.
func (l *AsyncLogger) process(jb job) {
	defer l.jobDone(jb.seq)
	bodies, err := chunkBatch(l.runID, jb.b, serverBatchLimits)
	if err != nil { // cannot happen for validated entities; report rather than panic
		l.rejectPoints(err, jb.b.Len())
		return
	}
	for _, body := range bodies {
		l.deliver(body, countEntities(body))
	}
}

// countEntities counts the metrics, params and tags in a log-batch body built
// by chunkBatch: each is an object starting with `{"key":`. The sequence cannot
// occur inside a JSON string, where the quote would be escaped.
func countEntities(body []byte) int { return bytes.Count(body, []byte(`{"key":`)) }

func (l *AsyncLogger) deliver(body []byte, n int) {
	l.jmu.Lock()
	if l.offline {
		// Behind records waiting for replay: keep the order.
		l.appendJournal(body, n)
		l.jmu.Unlock()
		return
	}
	l.jmu.Unlock()

	err := postBatch(l.sendCtx, l.c, body, &l.retries)
	switch {
	case err == nil:
		l.sent.Add(int64(n))
		l.batches.Add(1)
	case isTransient(err):
		l.jmu.Lock()
		l.appendJournal(body, n)
		if !l.offline {
			l.offline = true
			l.log.Warn("mlflowclient: async logger: server unreachable after retries; journaling points until it is back",
				"run_id", l.runID, "path", l.jpath, "err", err)
		}
		l.lastErr = err
		l.jmu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
	default:
		l.rejectPoints(err, n)
	}
}

// appendJournal writes one request to the journal; l.jmu must be held.
func (l *AsyncLogger) appendJournal(body []byte, n int) {
	var err error
	if l.j == nil {
		l.j, err = openJournal(l.jpath, l.log)
	}
	if err == nil {
		err = l.j.append(l.runID, body, n)
	}
	if err != nil {
		l.log.Error("mlflowclient: async logger: cannot journal a request; its points are lost",
			"run_id", l.runID, "points", n, "err", err)
		l.record(fmt.Errorf("mlflowclient: async logger: %d points lost: %w", n, err))
		return
	}
	l.journaled.Add(int64(n))
}

// rejectPoints reports points the server refused for good. They are not
// journaled: sending them again would fail the same way.
func (l *AsyncLogger) rejectPoints(err error, n int) {
	l.rejected.Add(int64(n))
	l.log.Error("mlflowclient: async logger: server rejected a request; its points are dropped",
		"run_id", l.runID, "points", n, "err", err)
	l.record(fmt.Errorf("mlflowclient: async logger: %d points rejected: %w", n, err))
}

func (l *AsyncLogger) record(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.first == nil {
		l.first = err
	}
	if len(l.errs) < maxHeldErrors {
		l.errs = append(l.errs, err)
	} else {
		l.dropped++
	}
}

func (l *AsyncLogger) takeErrs() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	errs := l.errs
	if l.dropped > 0 {
		errs = append(errs, fmt.Errorf("mlflowclient: async logger: %d more errors", l.dropped))
	}
	l.errs, l.dropped = nil, 0
	return errors.Join(errs...)
}

func (l *AsyncLogger) addWaiter(mark uint64, ack chan struct{}) {
	l.progMu.Lock()
	defer l.progMu.Unlock()
	if mark <= l.doneUpTo {
		close(ack)
		return
	}
	l.waiters = append(l.waiters, waiter{mark, ack})
}

func (l *AsyncLogger) jobDone(seq uint64) {
	l.progMu.Lock()
	defer l.progMu.Unlock()
	l.finished[seq] = true
	for l.finished[l.doneUpTo+1] {
		delete(l.finished, l.doneUpTo+1)
		l.doneUpTo++
	}
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		if w.mark <= l.doneUpTo {
			close(w.ack)
		} else {
			keep = append(keep, w)
		}
	}
	l.waiters = keep
}

// replayLoop waits for the logger to go offline, then probes the server with
// backoff and replays the journal once it answers. After final is closed it
// makes one last attempt and exits.
func (l *AsyncLogger) replayLoop() {
	defer close(l.replayDone)
	wait := probeMinWait
	for {
		l.jmu.Lock()
		offline := l.offline
		l.jmu.Unlock()
		if !offline {
			select {
			case <-l.kick:
				continue
			case <-l.final:
				return
			}
		}
		err := l.drain()
		if err == nil {
			wait = probeMinWait
			continue
		}
		l.jmu.Lock()
		l.lastErr = err
		l.jmu.Unlock()
		l.log.Debug("mlflowclient: async logger: server still unreachable", "run_id", l.runID, "err", err, "next_probe", wait)
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-t.C:
		case <-l.final:
			t.Stop()
			if l.sendCtx.Err() == nil {
				if err := l.drain(); err != nil {
					l.jmu.Lock()
					l.lastErr = err
					l.jmu.Unlock()
				}
			}
			return
		case <-l.sendCtx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, probeMaxWait)
	}
}

// drain probes the server, then replays the journal; it returns nil once the
// journal is empty and the logger is back online.
func (l *AsyncLogger) drain() error {
	if err := probe(l.sendCtx, l.c); err != nil {
		return err
	}
	l.jmu.Lock()
	j := l.j
	if j == nil { // offline without a journal: every append failed
		l.offline = false
		l.jmu.Unlock()
		return nil
	}
	points, recs := j.points, j.pending()
	l.jmu.Unlock()
	l.log.Info("mlflowclient: async logger: server reachable; replaying the journal",
		"run_id", l.runID, "path", l.jpath, "points", points, "requests", recs)
	return replayRecords(l.sendCtx, l.c, j, &l.jmu, &l.retries,
		func(n int) {
			l.sent.Add(int64(n))
			l.replayed.Add(int64(n))
			l.batches.Add(1)
		},
		l.rejectPoints,
		func() {
			l.offline = false
			l.log.Info("mlflowclient: async logger: journal replayed; sending directly again", "run_id", l.runID)
		})
}

// postBatch sends one pre-encoded log-batch body, counting repeated attempts.
func postBatch(ctx context.Context, c *Client, body []byte, retries *atomic.Int64) error {
	tries, err := c.callTries(ctx, endpoint{method: http.MethodPost, path: "/api/2.0/mlflow/runs/log-batch"}, json.RawMessage(body), nil)
	if tries > 1 && retries != nil {
		retries.Add(int64(tries - 1))
	}
	return err
}

// probe checks in one attempt that the tracking server answers. Any answer
// but a 5xx or 429 counts: a proxy without /health still proves the way open.
func probe(ctx context.Context, c *Client) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	e := endpoint{method: http.MethodGet, path: "/health"}
	resp, err := c.request(ctx).Execute(e.method, c.base(e).String()+e.path)
	if err != nil {
		return transportError(e, err)
	}
	if s := resp.StatusCode(); s >= 500 || s == http.StatusTooManyRequests {
		return newAPIError(e.method, e.path, s, resp.Header(), resp.Body())
	}
	return nil
}

// isTransient reports whether a failed request may succeed later: every
// failure without a server answer (refused, reset, timed out, abandoned) and
// retryable statuses whose MLflow code is not a deterministic one. These are
// journaled; a server answer that would repeat is reported instead.
func isTransient(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return retryableStatus(ae.StatusCode) &&
			!(deterministicCodes[ae.Code] && ae.Code != codeForStatus(ae.StatusCode))
	}
	return true
}
