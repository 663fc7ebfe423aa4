package pipeline

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress starts progress reports for long steps.
type Progress interface {
	// Start reports a step of total units (-1 when unknown).
	Start(step string, total int) Bar
}

// Bar is one step's progress.
type Bar interface {
	Add(n int)
	// Done ends the step (idempotent).
	Done()
}

// AutoProgress draws bars on w when w is a terminal and otherwise writes
// plain log lines (at most one per interval per step) to log.
func AutoProgress(w io.Writer, log *slog.Logger) Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return TerminalProgress(w)
	}
	return LogProgress(log, 5*time.Second)
}

// TerminalProgress draws a progress bar with rate and ETA on w.
func TerminalProgress(w io.Writer) Progress { return termProgress{w} }

type termProgress struct{ w io.Writer }

func (p termProgress) Start(step string, total int) Bar {
	b := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(step),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { io.WriteString(p.w, "\n") }),
		progressbar.OptionClearOnFinish(),
	)
	return &termBar{b: b}
}

type termBar struct {
	b    *progressbar.ProgressBar
	once sync.Once
}

func (t *termBar) Add(n int) { _ = t.b.Add(n) }
func (t *termBar) Done()     { t.once.Do(func() { _ = t.b.Finish() }) }

// LogProgress writes "step progress" log lines at most once per interval,
// and one when the step is done: readable in CI logs and files, where a
// redrawn bar is noise.
func LogProgress(log *slog.Logger, interval time.Duration) Progress {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return logProgress{log, interval}
}

type logProgress struct {
	log      *slog.Logger
	interval time.Duration
}

func (p logProgress) Start(step string, total int) Bar {
	now := time.Now()
	return &logBar{log: p.log, step: step, total: total, interval: p.interval, start: now, last: now}
}

type logBar struct {
	log         *slog.Logger
	step        string
	total       int
	interval    time.Duration
	mu          sync.Mutex
	n           int
	start, last time.Time
	done        bool
}

func (b *logBar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if now := time.Now(); now.Sub(b.last) >= b.interval && !b.done {
		b.last = now
		b.log.Info("progress", "step", b.step, "done", b.n, "total", b.total, "elapsed", now.Sub(b.start).Round(time.Millisecond))
	}
}

func (b *logBar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	b.log.Info("step done", "step", b.step, "units", b.n, "elapsed", time.Since(b.start).Round(time.Millisecond))
}

// NoProgress reports nothing.
var NoProgress Progress = noProgress{}

type noProgress struct{}

func (noProgress) Start(string, int) Bar { return noBar{} }

type noBar struct{}

func (noBar) Add(int) {}
func (noBar) Done()   {}
