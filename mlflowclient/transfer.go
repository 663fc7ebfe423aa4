package mlflowclient

// Streamed HTTP transfers for artifacts: one exchange retried with the
// client's policy, a watchdog that bounds time without progress (not the
// whole transfer, so multi-GB files are not cut off), and small io helpers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// transfer is one streamed HTTP exchange, retried with the client's policy.
type transfer struct {
	method string
	url    string // absolute URL; "" means the tracking server + path
	path   string // escaped path, for errors and logs (never a query)
	header http.Header
	auth   bool                          // send the client's credentials
	body   func() (io.ReadCloser, error) // opened anew for each attempt; nil: no body
	size   int64                         // body length, -1 if unknown
	policy RetryPolicy
	// onOK consumes a 2xx response inside the attempt, so a connection lost
	// mid-body is retried like any transport error.
	onOK func(*http.Response) error
	keep bool // return the 2xx response open (Open)
}

// send performs t. The client's timeout bounds each period without progress
// (no body bytes read or written, or no response), not the whole exchange.
func (s *ArtifactsService) send(ctx context.Context, t transfer) (*http.Response, error) {
	hc := *s.c.http.GetClient() // shares the Transport, hence its connections
	hc.Timeout = 0              // replaced by the watchdog below
	target := t.url
	if target == "" {
		target = s.c.tracking.String() + t.path
	}
	var kept *http.Response
	a := t.policy.do(ctx, s.c.cfg.logger, t.method+" "+t.path, func() attempt {
		actx, cancel := context.WithCancelCause(ctx)
		wd := newWatchdog(s.c.cfg.timeout, cancel)
		finish := func() { wd.stop(); cancel(nil) }
		fail := func(err error) attempt {
			if errors.Is(context.Cause(actx), errStalled) && ctx.Err() == nil {
				err = &stallError{s.c.cfg.timeout} // retryable, unlike a cancellation
			}
			finish()
			return attempt{err: err, header: http.Header{}}
		}
		req, err := http.NewRequestWithContext(actx, t.method, target, nil)
		if err != nil {
			return fail(err)
		}
		for k, v := range t.header {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", s.c.cfg.userAgent)
		if t.auth {
			s.c.authorize(req.Header)
		}
		if t.body != nil {
			var (
				mu     sync.Mutex
				bodies []*guardedBody
			)
			// Every body is closed when the attempt ends, so the transport can
			// never read one after a retry has started over.
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				for _, b := range bodies {
					_ = b.Close()
				}
			}()
			open := func() (io.ReadCloser, error) {
				if t.size == 0 {
					return http.NoBody, nil
				}
				rc, err := t.body()
				if err != nil {
					return nil, err
				}
				b := &guardedBody{rc: rc, wd: wd}
				mu.Lock()
				bodies = append(bodies, b)
				mu.Unlock()
				return b, nil
			}
			if req.Body, err = open(); err != nil {
				return fail(err)
			}
			req.ContentLength = t.size
			req.GetBody = open // lets net/http replay on redirects and dead keep-alive connections
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fail(err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			drain(resp.Body)
			finish()
			return attempt{status: resp.StatusCode, header: resp.Header, body: b}
		}
		if t.keep {
			wd.stop() // the caller reads at its own pace, bounded by ctx
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			kept = resp
			return attempt{status: resp.StatusCode, header: resp.Header}
		}
		if t.onOK != nil {
			resp.Body = readCloser{&progressReader{resp.Body, wd}, resp.Body}
			if err := t.onOK(resp); err != nil {
				drain(resp.Body)
				return fail(err)
			}
		}
		drain(resp.Body)
		finish()
		return attempt{status: resp.StatusCode, header: resp.Header}
	})
	if a.err != nil {
		return nil, fmt.Errorf("mlflowclient: %s %s: %w", t.method, t.path, a.err)
	}
	if a.status < 200 || a.status > 299 {
		return nil, newAPIError(t.method, t.path, a.status, a.header, a.body)
	}
	return kept, nil
}

var errStalled = errors.New("transfer stalled")

// stallError is a transfer that made no progress for the client's timeout;
// it is a net.Error timeout so the retry loop retries it.
type stallError struct{ d time.Duration }

func (e *stallError) Error() string   { return fmt.Sprintf("no progress for %s", e.d) }
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }

// watchdog cancels an attempt that makes no progress for d.
type watchdog struct {
	d       time.Duration
	t       *time.Timer
	stopped atomic.Bool
}

func newWatchdog(d time.Duration, cancel context.CancelCauseFunc) *watchdog {
	return &watchdog{d: d, t: time.AfterFunc(d, func() { cancel(errStalled) })}
}

func (w *watchdog) kick() {
	if !w.stopped.Load() {
		w.t.Reset(w.d)
	}
}

func (w *watchdog) stop() {
	w.stopped.Store(true)
	w.t.Stop()
}

// guardedBody is a request body that counts as progress when read and that,
// once closed, is never read again.
type guardedBody struct {
	mu     sync.Mutex
	rc     io.ReadCloser
	wd     *watchdog
	closed bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, os.ErrClosed
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.wd.kick()
	}
	return n, err
}

func (b *guardedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.rc.Close()
}

type progressReader struct {
	r  io.Reader
	wd *watchdog
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.wd.kick()
	}
	return n, err
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// forEach runs fn(ctx, i) for i in [0, n) on up to workers goroutines. The
// first error cancels the others and is returned.
func forEach(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	if n == 0 {
		return ctx.Err()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(wctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-wctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
