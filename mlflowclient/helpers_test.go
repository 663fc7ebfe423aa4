package mlflowclient

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
)

// countingHandler counts "retrying" debug records: how many retries happened.
type countingHandler struct{ n *atomic.Int32 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func newCountingLogger(n *atomic.Int32) *slog.Logger { return slog.New(countingHandler{n}) }
