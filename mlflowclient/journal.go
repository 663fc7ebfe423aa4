package mlflowclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A journal is a JSON Lines file of log-batch request bodies the server could
// not take. One line per request:
//
//	{"acked":0,"id":"9f0c…","run_id":"…","points":1000,"time":1700000000000,"body":{…}}
//
// body is the request exactly as it would have been sent. "acked" sits at a
// fixed offset and is flipped in place, with a one-byte write and an fsync, to
// 1 once the server acknowledged the record or 2 once it rejected it for good
// (the record is then copied to <path>.rejected first). Progress therefore
// survives a crash without rewriting the file; when every record is done the
// file is truncated. A record sent but not yet marked when the process dies is
// sent again by the next replay: harmless for MLflow, which stores a metric
// point once per (key, timestamp, step, value), ignores a param re-sent with
// the same value and overwrites tags.
//
// A journal is not safe for concurrent use; callers serialize access.
type journal struct {
	path   string
	log    *slog.Logger
	f      *os.File
	size   int64        // end of the last complete record
	recs   []journalRec // records not done yet, in file order
	points int          // points in recs
}

type journalRec struct {
	off    int64 // where the line starts
	n      int   // line length including the newline
	points int
}

// journalPrefix starts every record so that the state byte is at a fixed offset.
const journalPrefix = `{"acked":`

const (
	recPending  = '0'
	recAcked    = '1'
	recRejected = '2'
)

type journalLine struct {
	Acked  int             `json:"acked"`
	ID     string          `json:"id"`
	RunID  string          `json:"run_id"`
	Points int             `json:"points"`
	Time   int64           `json:"time"`
	Body   json.RawMessage `json:"body"`
}

// openJournal opens (creating it and its directory if needed) the journal at
// path and indexes the records not yet done. A torn last line, left by a crash
// in the middle of an append, is cut off: its points were never durably stored.
func openJournal(path string, log *slog.Logger) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("mlflowclient: journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mlflowclient: journal: %w", err)
	}
	j := &journal{path: path, log: log, f: f}
	if err := j.scan(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journal) scan() error {
	r := bufio.NewReaderSize(j.f, 1<<20)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] != '\n' {
			// The last line has no newline: an interrupted append.
			if _, perr := parseJournalLine(line); perr != nil {
				j.log.Warn("mlflowclient: journal: cutting off a torn last record (its points were never stored)",
					"path", j.path, "offset", off, "bytes", len(line))
				if err := j.f.Truncate(off); err != nil {
					return fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
				}
				break
			}
			// Complete but for the newline: keep it.
			if _, err := j.f.WriteAt([]byte{'\n'}, off+int64(len(line))); err != nil {
				return fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
			}
			line = append(line, '\n')
		}
		if len(line) > 0 {
			rec, perr := parseJournalLine(line)
			if perr != nil {
				return fmt.Errorf("mlflowclient: journal %s: record at byte %d is corrupt (fix or move the file): %w", j.path, off, perr)
			}
			if line[len(journalPrefix)] == recPending {
				j.recs = append(j.recs, journalRec{off: off, n: len(line), points: rec.Points})
				j.points += rec.Points
			}
			off += int64(len(line))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
		}
	}
	j.size = off
	if len(j.recs) == 0 && off > 0 {
		return j.reset()
	}
	return nil
}

func parseJournalLine(line []byte) (journalLine, error) {
	var rec journalLine
	if !bytes.HasPrefix(line, []byte(journalPrefix)) || len(line) <= len(journalPrefix) {
		return rec, errors.New("not a journal record")
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return rec, err
	}
	if len(rec.Body) == 0 {
		return rec, errors.New("record has no body")
	}
	return rec, nil
}

// pending is the number of records not yet done.
func (j *journal) pending() int { return len(j.recs) }

// append writes one record and fsyncs it.
func (j *journal) append(runID string, body []byte, points int) error {
	var id [8]byte
	_, _ = rand.Read(id[:])
	line := make([]byte, 0, len(body)+160)
	line = append(line, journalPrefix...)
	line = append(line, recPending)
	line = append(line, `,"id":"`...)
	line = hex.AppendEncode(line, id[:])
	line = append(line, `","run_id":`...)
	line = strconv.AppendQuote(line, runID)
	line = append(line, `,"points":`...)
	line = strconv.AppendInt(line, int64(points), 10)
	line = append(line, `,"time":`...)
	line = strconv.AppendInt(line, time.Now().UnixMilli(), 10)
	line = append(line, `,"body":`...)
	line = append(line, body...)
	line = append(line, "}\n"...)
	if _, err := j.f.WriteAt(line, j.size); err != nil {
		_ = j.f.Truncate(j.size) // best effort: never leave a torn record behind
		return fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		_ = j.f.Truncate(j.size)
		return fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
	}
	j.recs = append(j.recs, journalRec{off: j.size, n: len(line), points: points})
	j.size += int64(len(line))
	j.points += points
	return nil
}

// head reads the oldest record not yet done.
func (j *journal) head() (journalRec, journalLine, []byte, error) {
	rec := j.recs[0]
	buf := make([]byte, rec.n)
	if _, err := j.f.ReadAt(buf, rec.off); err != nil {
		return rec, journalLine{}, nil, fmt.Errorf("mlflowclient: journal %s: %w", j.path, err)
	}
	line, err := parseJournalLine(buf)
	if err != nil {
		return rec, line, nil, fmt.Errorf("mlflowclient: journal %s: record at byte %d: %w", j.path, rec.off, err)
	}
	return rec, line, buf, nil
}

// done marks the head record acked or rejected. It is dropped from the index
// even if the mark cannot be written: at worst a later replay sends it again.
// When no record is left the file is truncated.
func (j *journal) done(state byte) error {
	rec := j.recs[0]
	j.recs = j.recs[1:]
	j.points -= rec.points
	var err error
	if _, err = j.f.WriteAt([]byte{state}, rec.off+int64(len(journalPrefix))); err == nil {
		err = j.f.Sync()
	}
	if len(j.recs) == 0 {
		err = errors.Join(err, j.reset())
	}
	if err != nil {
		return fmt.Errorf("mlflowclient: journal %s: marking a record done: %w", j.path, err)
	}
	return nil
}

// reject copies the head record to <path>.rejected, then marks it rejected.
func (j *journal) reject(line []byte) error {
	f, err := os.OpenFile(j.path+".rejected", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err == nil {
		_, err = f.Write(line)
		err = errors.Join(err, f.Sync(), f.Close())
	}
	return errors.Join(err, j.done(recRejected))
}

func (j *journal) reset() error {
	j.recs, j.points, j.size = nil, 0, 0
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	return j.f.Sync()
}

// close closes the file, removing it when no record is left.
func (j *journal) close() error {
	err := j.f.Close()
	if len(j.recs) == 0 {
		if rerr := os.Remove(j.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// replayRecords sends j's records in order until none is left (onEmpty then
// runs with mu held, so no append can slip in between) or a send fails
// transiently (that error is returned). Records the server rejects for good
// are moved aside and reported to onRejected. mu guards j; it is not held
// while a request is in flight.
func replayRecords(ctx context.Context, c *Client, j *journal, mu *sync.Mutex, retries *atomic.Int64,
	onSent func(points int), onRejected func(err error, points int), onEmpty func()) error {
	for {
		mu.Lock()
		if j.pending() == 0 {
			if onEmpty != nil {
				onEmpty()
			}
			mu.Unlock()
			return nil
		}
		rec, line, raw, err := j.head()
		mu.Unlock()
		if err != nil {
			return err
		}
		err = postBatch(ctx, c, line.Body, retries)
		mu.Lock()
		switch {
		case err == nil:
			if merr := j.done(recAcked); merr != nil {
				c.Logger().Warn("mlflowclient: journal: record sent but not marked; a later replay may send it again (harmless)", "err", merr)
			}
			mu.Unlock()
			onSent(rec.points)
		case isTransient(err):
			mu.Unlock()
			return err
		default:
			if rerr := j.reject(raw); rerr != nil {
				err = errors.Join(err, rerr)
			}
			mu.Unlock()
			onRejected(fmt.Errorf("mlflowclient: journal record %s (%d points) rejected, moved to %s: %w",
				line.ID, rec.points, j.path+".rejected", err), rec.points)
		}
	}
}

// ReplayJournal sends the records of the journal at path (left by an
// AsyncLogger whose server stayed unreachable) in order, and removes the file
// once every record is done. It returns the number of points sent. When the
// server fails transiently it stops, keeping what is left for a later replay;
// records the server rejects for good are moved to <path>.rejected and
// reported in the error. A missing file is not an error.
func ReplayJournal(ctx context.Context, c *Client, path string) (int, error) {
	if c == nil {
		return 0, &ConfigError{Field: "client", Reason: "is nil"}
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	j, err := openJournal(path, c.Logger())
	if err != nil {
		return 0, err
	}
	var (
		mu       sync.Mutex
		sent     int
		rejected []error
	)
	err = replayRecords(ctx, c, j, &mu, nil,
		func(n int) { sent += n },
		func(err error, _ int) { rejected = append(rejected, err) },
		nil)
	if err != nil {
		err = fmt.Errorf("mlflowclient: replaying %s: %d points (%d records) left: %w", path, j.points, j.pending(), err)
	}
	return sent, errors.Join(append(rejected, err, j.close())...)
}
