package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/models/mlmodel"
)

// The local cache: CacheDir/<name>/<version>/ is a verified MLflow Model
// folder and CacheDir/<name>/<version>.json its marker, written last, so a
// folder without a marker is an interrupted copy. Downloads land in
// CacheDir/<name>/.incoming-* first and move in once verified.

// cacheKeep is how many versions the cache keeps besides those serving.
const cacheKeep = 2

// cacheMarker records a verified version in the cache.
type cacheMarker struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Stage    string    `json:"stage"` // the stage or alias it was loaded for
	Role     Role      `json:"role"`
	Verified time.Time `json:"verified"`
}

// modelCache is the cache directory of the Manager's model. Under loadMu.
func (m *Manager) modelCache() (string, error) {
	if m.cacheDir == "" {
		root := m.cfg.CacheDir
		if root == "" {
			tmp, err := os.MkdirTemp("", "capflow-models-")
			if err != nil {
				return "", fmt.Errorf("serving: model cache: %w", err)
			}
			root, m.tempDir = tmp, true
		}
		m.cacheDir = root
	}
	dir := filepath.Join(m.cacheDir, url.PathEscape(m.cfg.Name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("serving: model cache: %w", err)
	}
	return dir, nil
}

// load returns the verified model of version for slot s: the cached folder
// when there is one that verifies, else a download that verifies, which
// then enters the cache. Under loadMu.
func (m *Manager) load(ctx context.Context, s *slot, version string) (*holder, error) {
	refuse := func(reason string, err error) error {
		return &RefusedError{Role: s.role, Name: m.cfg.Name, Version: version, Follow: s.follow.text, Reason: reason, Err: err}
	}
	root, err := m.modelCache()
	if err != nil {
		return nil, refuse(ReasonDownload, err)
	}
	dir, marker := filepath.Join(root, version), filepath.Join(root, version+".json")
	if _, err := os.Stat(marker); err == nil {
		h, err := m.open(ctx, s, version, dir)
		if err == nil {
			m.met.cacheHits.Inc()
			m.log.Info("model found in the local cache", "role", s.role, "version", version, "dir", dir)
			if err := m.mark(root, h.model, s.role); err != nil {
				m.log.Warn("cache marker not updated", "version", version, "err", err)
			}
			return h, nil
		}
		// Registry versions never change, so a cached copy that fails is
		// damaged: drop it and download again.
		m.log.Warn("cached model does not verify; downloading it again", "version", version, "err", err)
		os.Remove(marker)
		os.RemoveAll(dir)
	}
	staging, err := os.MkdirTemp(root, ".incoming-"+version+"-")
	if err != nil {
		return nil, refuse(ReasonDownload, err)
	}
	defer os.RemoveAll(staging)
	uri := "models:/" + m.cfg.Name + "/" + version
	folder := filepath.Join(staging, "model")
	if _, err := mlmodel.Download(ctx, m.cfg.Client, uri, folder); err != nil {
		var fe *mlmodel.FolderError
		if errors.As(err, &fe) {
			return nil, refuse(ReasonVerify, err)
		}
		return nil, refuse(ReasonDownload, err)
	}
	h, err := m.open(ctx, s, version, folder)
	if err != nil {
		return nil, err
	}
	// ONNX Runtime holds the model in memory: the folder can move.
	os.RemoveAll(dir)
	if err := os.Rename(folder, dir); err != nil {
		m.log.Warn("model verified but not cached", "version", version, "err", err)
		return h, nil
	}
	if err := m.mark(root, h.model, s.role); err != nil {
		m.log.Warn("model verified but not cached", "version", version, "err", err)
	}
	return h, nil
}

// mark writes the version's marker atomically.
func (m *Manager) mark(root string, model *Model, role Role) error {
	b, _ := json.MarshalIndent(cacheMarker{Name: model.Name, Version: model.Version, Stage: model.Stage, Role: role, Verified: time.Now().UTC()}, "", "  ")
	f, err := os.CreateTemp(root, ".marker-*")
	if err != nil {
		return fmt.Errorf("serving: cache marker: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("serving: cache marker: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("serving: cache marker: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("serving: cache marker: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(root, model.Version+".json")); err != nil {
		return fmt.Errorf("serving: cache marker: %w", err)
	}
	return nil
}

// markers lists the cache's markers, newest first.
func (m *Manager) markers(root string) []cacheMarker {
	entries, _ := os.ReadDir(root)
	var out []cacheMarker
	for _, e := range entries {
		v, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(v, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name()))
		var mk cacheMarker
		if err != nil || json.Unmarshal(b, &mk) != nil || mk.Version != v {
			m.log.Warn("ignoring a damaged cache marker", "file", e.Name())
			continue
		}
		out = append(out, mk)
	}
	slices.SortFunc(out, func(a, b cacheMarker) int {
		if c := b.Verified.Compare(a.Verified); c != 0 {
			return c
		}
		x, _ := strconv.Atoi(a.Version)
		y, _ := strconv.Atoi(b.Version)
		return y - x
	})
	return out
}

// loadCached serves the newest cached version loaded for the slot's stage
// or alias, verified again. Under loadMu.
func (m *Manager) loadCached(ctx context.Context, s *slot) error {
	refuse := func(version string, err error) error {
		return m.fail(&RefusedError{Role: s.role, Name: m.cfg.Name, Version: version, Follow: s.follow.text, Reason: ReasonCache, Err: err}, nil)
	}
	if m.cfg.CacheDir == "" {
		return refuse("", errors.New("no CacheDir configured"))
	}
	root, err := m.modelCache()
	if err != nil {
		return refuse("", err)
	}
	var errs []error
	for _, mk := range m.markers(root) {
		if mk.Stage != s.follow.text {
			continue
		}
		h, err := m.open(ctx, s, mk.Version, filepath.Join(root, mk.Version))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.met.cacheHits.Inc()
		m.log.Warn("serving the last verified model from the local cache", "role", s.role, "version", mk.Version, "verified", mk.Verified)
		m.install(s, h)
		return nil
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no cached version of %s for %s in %s", m.cfg.Name, s.follow.text, root))
	}
	return refuse("", errors.Join(errs...))
}

// pruneCache keeps the cacheKeep newest versions and those serving, and
// removes interrupted downloads and copies. Under loadMu.
func (m *Manager) pruneCache() {
	root, err := m.modelCache()
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, s := range m.slots() {
		if h := s.cur.Load(); h != nil {
			keep[h.model.Version] = true
		}
	}
	for i, mk := range m.markers(root) {
		if i < cacheKeep {
			keep[mk.Version] = true
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		v := strings.TrimSuffix(e.Name(), ".json")
		if keep[v] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			m.log.Warn("pruning the model cache", "path", e.Name(), "err", err)
		}
	}
}
