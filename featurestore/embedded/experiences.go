package embedded

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/internal/codec"
)

// expRecord is a stored experience; the intent embedding, if any, is kept
// as codec.EncodeVector bytes (little-endian float32s) rather than a JSON
// number list.
type expRecord struct {
	featurestore.Experience
	Embedding []byte `json:"intent_embedding_codec,omitempty"`
}

// timeKey orders instants bytewise: seconds since the epoch with the sign
// bit flipped (so pre-1970 sorts first), then nanoseconds, big-endian. Unix
// nanoseconds in an int64 would overflow past 2262, and callers ask for
// "everything up to year 9999".
const timeKeyLen = 12

func timeKey(t time.Time) []byte {
	k := make([]byte, timeKeyLen, timeKeyLen+8)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// putExperience stores e (already validated, timestamp in UTC) under a new
// id with its index entries. With skipDuplicate, an experience identical to
// a stored one is not stored again; it reports whether e was stored.
func putExperience(tx *bolt.Tx, e featurestore.Experience, skipDuplicate bool) (bool, error) {
	e.ID = 0
	e.Timestamp = e.Timestamp.UTC()
	rec := expRecord{Experience: e}
	if e.IntentEmbedding != nil {
		rec.Embedding = codec.EncodeVector(e.IntentEmbedding)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	// An experience is identified, as in the postgres backend, by session,
	// time, selected capability and intent: re-imports and retried appends
	// are no-ops.
	sum := sha256.Sum256([]byte(e.SessionID + "\x00" + e.Timestamp.Format(time.RFC3339Nano) + "\x00" + e.SelectedCapability + "\x00" + e.Intent))
	byHash := tx.Bucket(bucketExpsByHash)
	if skipDuplicate && byHash.Get(sum[:]) != nil {
		return false, nil
	}
	exps := tx.Bucket(bucketExps)
	id, err := exps.NextSequence()
	if err != nil {
		return false, err
	}
	key := idKey(id)
	if err := exps.Put(key, raw); err != nil {
		return false, err
	}
	tk := append(timeKey(e.Timestamp), key...)
	if err := tx.Bucket(bucketExpsByTime).Put(tk, []byte(e.SelectedCapability)); err != nil {
		return false, err
	}
	sk := append(append([]byte(e.SessionID), 0), tk...)
	if err := tx.Bucket(bucketExpsBySess).Put(sk, nil); err != nil {
		return false, err
	}
	return true, byHash.Put(sum[:], key)
}

func getExperience(exps *bolt.Bucket, key []byte) (featurestore.Experience, error) {
	raw := exps.Get(key)
	if raw == nil {
		return featurestore.Experience{}, fmt.Errorf("index names missing experience %d", binary.BigEndian.Uint64(key))
	}
	var rec expRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return featurestore.Experience{}, fmt.Errorf("experience %d: %w", binary.BigEndian.Uint64(key), err)
	}
	e := rec.Experience
	e.ID = int64(binary.BigEndian.Uint64(key))
	e.Timestamp = e.Timestamp.UTC()
	if rec.Embedding != nil {
		var err error
		if e.IntentEmbedding, err = codec.DecodeVector(rec.Embedding); err != nil {
			return featurestore.Experience{}, fmt.Errorf("experience %d: %w", e.ID, err)
		}
	}
	return e, nil
}

// AppendExperiences validates and appends exps in one transaction: all of
// them or none. Each is checked by the dataset rules against the stored
// tools and capabilities; errors name experiences "#i" by their index in
// exps. An experience already stored (same session, timestamp, selected
// capability and intent) is skipped, so a retried append is harmless.
func (s *Store) AppendExperiences(ctx context.Context, exps ...featurestore.Experience) error {
	if len(exps) == 0 {
		return nil
	}
	// Validate normalises in place; the caller's slice stays as it was.
	exps = append([]featurestore.Experience(nil), exps...)
	return s.update(ctx, "append experiences", func(tx *bolt.Tx) error {
		if err := s.checkExperiences(tx, exps); err != nil {
			return err
		}
		for _, e := range exps {
			if _, err := putExperience(tx, e, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkExperiences applies the import rules to exps, with ids resolved
// against the stored tools and capabilities.
func (s *Store) checkExperiences(tx *bolt.Tx, exps []featurestore.Experience) error {
	tools, caps := tx.Bucket(bucketTools), tx.Bucket(bucketCaps)
	return s.cfg.CheckExperiences(exps,
		func(id string) bool { return tools.Get([]byte(id)) != nil },
		func(id string) bool { return caps.Get([]byte(id)) != nil })
}

// ExperiencesBetween returns the experiences with from ≤ timestamp < to,
// ordered by timestamp then id.
func (s *Store) ExperiencesBetween(ctx context.Context, from, to time.Time) ([]featurestore.Experience, error) {
	var out []featurestore.Experience
	err := s.view(ctx, "experiences between", func(tx *bolt.Tx) error {
		exps := tx.Bucket(bucketExps)
		end := timeKey(to)
		c := tx.Bucket(bucketExpsByTime).Cursor()
		for k, _ := c.Seek(timeKey(from)); k != nil && bytes.Compare(k[:timeKeyLen], end) < 0; k, _ = c.Next() {
			e, err := getExperience(exps, k[timeKeyLen:])
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ExperiencesBySession returns a session's experiences ordered by timestamp
// then id; an unknown session has none.
func (s *Store) ExperiencesBySession(ctx context.Context, sessionID string) ([]featurestore.Experience, error) {
	var out []featurestore.Experience
	err := s.view(ctx, "experiences by session", func(tx *bolt.Tx) error {
		exps := tx.Bucket(bucketExps)
		prefix := append([]byte(sessionID), 0)
		c := tx.Bucket(bucketExpsBySess).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			e, err := getExperience(exps, k[len(prefix)+timeKeyLen:])
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// UsageCounts counts, per selected capability, the experiences with
// now-N days ≤ timestamp < now for N = 1, 7, 30. It reads only the time
// index, whose values are the selected capabilities.
func (s *Store) UsageCounts(ctx context.Context, now time.Time) (map[string]featurestore.Usage, error) {
	const day = 24 * time.Hour
	out := map[string]featurestore.Usage{}
	err := s.view(ctx, "usage counts", func(tx *bolt.Tx) error {
		k1, k7 := timeKey(now.Add(-day)), timeKey(now.Add(-7*day))
		end := timeKey(now)
		c := tx.Bucket(bucketExpsByTime).Cursor()
		for k, v := c.Seek(timeKey(now.Add(-30 * day))); k != nil && bytes.Compare(k[:timeKeyLen], end) < 0; k, v = c.Next() {
			u := out[string(v)]
			u.Count30d++
			if bytes.Compare(k[:timeKeyLen], k7) >= 0 {
				u.Count7d++
			}
			if bytes.Compare(k[:timeKeyLen], k1) >= 0 {
				u.Count1d++
			}
			out[string(v)] = u
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
