package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
)

// capRecord is a stored capability: the interchange fields plus the level
// Validate computed.
type capRecord struct {
	featurestore.Capability
	Level int `json:"level"`
}

// view and update run fn in a read or write transaction, after checking ctx
// (bbolt itself does not take one).
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("embedded: %s: %w", op, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// WriteDataset validates d (normalising it in place, see
// featurestore.Config.Validate) and upserts it in one transaction. Tools,
// capabilities and queries are keyed by id; an experience identical to one
// already stored is skipped, which is what makes a re-import a no-op.
func (s *Store) WriteDataset(ctx context.Context, d *featurestore.Dataset) error {
	if err := s.cfg.Validate(d); err != nil {
		return fmt.Errorf("embedded: write dataset: %w", err)
	}
	return s.update(ctx, "write dataset", func(tx *bolt.Tx) error {
		tools := tx.Bucket(bucketTools)
		for _, t := range d.Tools {
			if err := putJSON(tools, t.ID, t); err != nil {
				return err
			}
		}
		caps := tx.Bucket(bucketCaps)
		levelChanged := false
		for _, c := range d.Capabilities {
			if old := caps.Get([]byte(c.ID)); old != nil && !levelChanged {
				prev, err := decodeCapability([]byte(c.ID), old)
				if err != nil {
					return err
				}
				levelChanged = prev.Level != c.Level
			}
			if err := putJSON(caps, c.ID, capRecord{Capability: c, Level: c.Level}); err != nil {
				return err
			}
		}
		if levelChanged {
			if err := recomputeLevels(caps); err != nil {
				return err
			}
		}
		queries := tx.Bucket(bucketQueries)
		for _, q := range d.Queries {
			if err := putJSON(queries, q.ID, q); err != nil {
				return err
			}
		}
		for _, e := range d.Experiences {
			if _, err := putExperience(tx, e, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// Tools returns every tool, ordered by id.
func (s *Store) Tools(ctx context.Context) ([]featurestore.Tool, error) {
	var out []featurestore.Tool
	err := s.view(ctx, "tools", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTools).ForEach(func(k, v []byte) error {
			var t featurestore.Tool
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("tool %q: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

func decodeCapability(k, v []byte) (featurestore.Capability, error) {
	var r capRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return featurestore.Capability{}, fmt.Errorf("capability %q: %w", k, err)
	}
	r.Capability.Level = r.Level
	return r.Capability, nil
}

// Capabilities returns every capability, ordered by id.
func (s *Store) Capabilities(ctx context.Context) ([]featurestore.Capability, error) {
	var out []featurestore.Capability
	err := s.view(ctx, "capabilities", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCaps).ForEach(func(k, v []byte) error {
			c, err := decodeCapability(k, v)
			out = append(out, c)
			return err
		})
	})
	return out, err
}

// CapabilitiesByID returns the capabilities in ids' order; an unknown id is
// a *featurestore.NotFoundError.
func (s *Store) CapabilitiesByID(ctx context.Context, ids []string) ([]featurestore.Capability, error) {
	out := make([]featurestore.Capability, 0, len(ids))
	err := s.view(ctx, "capabilities by id", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCaps)
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				return &featurestore.NotFoundError{Kind: "capability", ID: id}
			}
			c, err := decodeCapability([]byte(id), v)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Queries returns every evaluation query, ordered by id.
func (s *Store) Queries(ctx context.Context) ([]featurestore.Query, error) {
	var out []featurestore.Query
	err := s.view(ctx, "queries", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueries).ForEach(func(k, v []byte) error {
			var q featurestore.Query
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("query %q: %w", k, err)
			}
			if q.Timestamp != nil {
				t := q.Timestamp.UTC()
				q.Timestamp = &t
			}
			out = append(out, q)
			return nil
		})
	})
	return out, err
}

// recomputeLevels brings every stored capability's level up to date after
// a rewrite changed the level of one that others may hold as a member.
// A dataset names every member of its capabilities, so writing one cannot
// close a cycle through stored capabilities; the check here is a guard.
func recomputeLevels(caps *bolt.Bucket) error {
	all := map[string]*capRecord{}
	err := caps.ForEach(func(k, v []byte) error {
		var r capRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("capability %q: %w", k, err)
		}
		all[string(k)] = &r
		return nil
	})
	if err != nil {
		return err
	}
	level := make(map[string]int, len(all))
	onPath := map[string]bool{}
	var visit func(id string) (int, error)
	visit = func(id string) (int, error) {
		if l, ok := level[id]; ok {
			return l, nil
		}
		if onPath[id] {
			return 0, fmt.Errorf("capability %q is on a membership cycle", id)
		}
		onPath[id] = true
		l := 0
		for _, m := range all[id].Members {
			if _, isCap := all[m]; !isCap {
				continue
			}
			ml, err := visit(m)
			if err != nil {
				return 0, err
			}
			l = max(l, ml+1)
		}
		delete(onPath, id)
		level[id] = l
		return l, nil
	}
	for id, r := range all {
		l, err := visit(id)
		if err != nil {
			return err
		}
		if l != r.Level {
			r.Level = l
			if err := putJSON(caps, id, r); err != nil {
				return err
			}
		}
	}
	return nil
}
