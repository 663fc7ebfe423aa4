package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/ranker"
)

// DefaultPoll is how often a Manager asks the registry for a new version.
const DefaultPoll = 30 * time.Second

// ManagerConfig configures NewManager.
type ManagerConfig struct {
	Client *mlflowclient.Client // the registry; required
	Name   string               // registered model (default mlmodel.DefaultName, "capflow-shgat")
	// Follow is what the primary serves: a stage ("Production", the
	// default) or an alias ("@champion").
	Follow string
	Canary CanaryConfig // optional: a share of sessions on a candidate
	Shadow ShadowConfig // optional: a model scored off the request path
	// Poll is the registry polling interval (default DefaultPoll; negative:
	// no polling, only Start and Reload load).
	Poll time.Duration
	// CacheDir keeps the last verified versions for restarts without the
	// registry (CacheDir/<name>/<version>). Empty: a temporary directory,
	// removed on Close, so no restart fallback. One Manager per CacheDir.
	CacheDir string
	// Tools and Caps are the store's catalog: ranker.Open builds the
	// evidence index from them and every tool and capability of a model's
	// catalog must be among them.
	Tools []featurestore.Tool
	Caps  []featurestore.Capability
	// Dim is the store's text embedding width; a model of another width is
	// refused. Required.
	Dim        int
	ORTLibrary string       // libonnxruntime.so (default: ONNXRUNTIME_SHARED_LIBRARY_PATH)
	Logger     *slog.Logger // default slog.Default()
	// Registerer receives the Manager's collectors (nil: not registered).
	Registerer prometheus.Registerer
}

// CanaryConfig sends Percent of the sessions to the model Follow names.
type CanaryConfig struct {
	Follow  string  // stage or "@alias" of the candidate, e.g. "Staging"; "" disables the canary
	Percent float64 // 0–100, in steps of 0.01
}

// ShadowConfig scores a SampleRate share of requests with the model Follow
// names, off the request path, to compare it with the primary.
type ShadowConfig struct {
	Follow     string  // stage or "@alias", e.g. "Staging"; "" disables the shadow
	SampleRate float64 // 0–1
}

// ManagerConfigError says which ManagerConfig field is wrong.
type ManagerConfigError struct{ Field, Reason string }

func (e *ManagerConfigError) Error() string {
	return "serving: manager config: " + e.Field + " " + e.Reason
}

// Load failure reasons: the values of the failures counter's reason label
// and of RefusedError.Reason.
const (
	ReasonRegistry  = "registry"   // the registry could not be asked
	ReasonNoVersion = "no_version" // the stage or alias holds no version
	ReasonDownload  = "download"   // the artifacts could not be fetched
	ReasonVerify    = "verify"     // not a valid model: MLmodel, ONNX contract, example scores
	ReasonDim       = "dim"        // the model's width is not the store's
	ReasonCatalog   = "catalog"    // the model's catalog has ids the store lacks
	ReasonCache     = "cache"      // no usable cached version
)

// ErrNoVersion is wrapped when the followed stage or alias holds no version.
var ErrNoVersion = errors.New("no version")

// RefusedError says why a version was not swapped in; the model serving
// before keeps serving.
type RefusedError struct {
	Role    Role
	Name    string
	Version string // "" when none was resolved
	Follow  string // the stage or alias followed
	Reason  string // one of the Reason* constants
	Err     error
}

func (e *RefusedError) Error() string {
	v := e.Version
	if v == "" {
		v = "?"
	}
	return fmt.Sprintf("serving: %s model %s version %s (%s) refused: %s: %v", e.Role, e.Name, v, e.Follow, e.Reason, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// target is a parsed Follow: a stage or an alias.
type target struct {
	text  string
	stage mlflowclient.Stage
	alias string
}

func parseTarget(field, s string) (target, error) {
	if a, ok := strings.CutPrefix(s, "@"); ok {
		if a == "" {
			return target{}, &ManagerConfigError{Field: field, Reason: "names an empty alias"}
		}
		return target{text: s, alias: a}, nil
	}
	st, err := mlflowclient.ParseStage(s)
	if err != nil || st == mlflowclient.StageNone || st == mlflowclient.StageArchived {
		return target{}, &ManagerConfigError{Field: field, Reason: fmt.Sprintf("is %q, want Production, Staging or @alias", s)}
	}
	return target{text: string(st), stage: st}, nil
}

// slot is one role's current model.
type slot struct {
	role    Role
	follow  target
	cur     atomic.Pointer[holder]
	refused map[string]error // version → why it was refused (deterministic refusals only); under Manager.loadMu
}

// Manager follows the registry and serves verified models; it implements
// Models. Create with NewManager, then Start.
type Manager struct {
	cfg     ManagerConfig
	log     *slog.Logger
	met     *managerMetrics
	toolSet map[string]bool
	capSet  map[string]bool

	primary, canary, shadow *slot // canary and shadow nil when not configured

	loadMu   sync.Mutex // serialises loads, swaps and the cache
	cacheDir string     // resolved lazily (a temporary one when not configured)
	tempDir  bool
	started  bool
	closed   atomic.Bool

	stop func()
	wg   sync.WaitGroup
}

var _ Models = (*Manager)(nil)

// NewManager checks cfg and registers the Manager's collectors. It loads
// nothing: call Start.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Client == nil {
		return nil, &ManagerConfigError{Field: "Client", Reason: "is required"}
	}
	if cfg.Name == "" {
		cfg.Name = mlmodel.DefaultName
	}
	if cfg.Follow == "" {
		cfg.Follow = string(mlflowclient.StageProduction)
	}
	if cfg.Dim <= 0 {
		return nil, &ManagerConfigError{Field: "Dim", Reason: fmt.Sprintf("is %d, want the store's text dimension", cfg.Dim)}
	}
	if len(cfg.Caps) == 0 {
		return nil, &ManagerConfigError{Field: "Caps", Reason: "is empty: the store's catalog is required"}
	}
	if p := cfg.Canary.Percent; p < 0 || p > 100 {
		return nil, &ManagerConfigError{Field: "Canary.Percent", Reason: fmt.Sprintf("is %v, want 0–100", p)}
	}
	if r := cfg.Shadow.SampleRate; r < 0 || r > 1 {
		return nil, &ManagerConfigError{Field: "Shadow.SampleRate", Reason: fmt.Sprintf("is %v, want 0–1", r)}
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "serving.manager", "model", cfg.Name),
		toolSet: map[string]bool{}, capSet: map[string]bool{}}
	for _, t := range cfg.Tools {
		m.toolSet[t.ID] = true
	}
	for _, c := range cfg.Caps {
		m.capSet[c.ID] = true
	}
	newSlot := func(role Role, field, follow string) (*slot, error) {
		t, err := parseTarget(field, follow)
		if err != nil {
			return nil, err
		}
		return &slot{role: role, follow: t, refused: map[string]error{}}, nil
	}
	var err error
	if m.primary, err = newSlot(RolePrimary, "Follow", cfg.Follow); err != nil {
		return nil, err
	}
	if cfg.Canary.Follow != "" {
		if m.canary, err = newSlot(RoleCanary, "Canary.Follow", cfg.Canary.Follow); err != nil {
			return nil, err
		}
	}
	if cfg.Shadow.Follow != "" {
		if m.shadow, err = newSlot(RoleShadow, "Shadow.Follow", cfg.Shadow.Follow); err != nil {
			return nil, err
		}
	}
	if m.met, err = newManagerMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) slots() []*slot {
	out := []*slot{m.primary}
	for _, s := range []*slot{m.canary, m.shadow} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Start loads the primary model from the registry or, when the registry
// cannot be asked or its version is refused, from the local cache; it
// fails when neither gives a verified model. It then loads the canary and
// shadow models (failures are logged, not fatal) and polls the registry
// until ctx ends or Close.
func (m *Manager) Start(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if m.started || m.closed.Load() {
		return errors.New("serving: Manager.Start called twice or after Close")
	}
	m.started = true
	if _, err := m.reloadSlot(ctx, m.primary); err != nil && m.primary.cur.Load() == nil {
		if cerr := m.loadCached(ctx, m.primary); cerr != nil {
			return fmt.Errorf("serving: no model to serve: %w", errors.Join(err, cerr))
		}
	}
	for _, s := range []*slot{m.canary, m.shadow} {
		if s != nil {
			m.reloadSlot(ctx, s) // logged and counted inside; the primary serves meanwhile
		}
	}
	if m.cfg.Poll > 0 {
		loopCtx, cancel := context.WithCancel(ctx)
		m.stop = cancel
		m.wg.Add(1)
		go m.poll(loopCtx)
	}
	return nil
}

func (m *Manager) poll(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Reload(ctx) // failures are logged and counted inside
		}
	}
}

// Reload asks the registry for each followed stage or alias and swaps in
// every new version that verifies; it is what polling and the /reload
// endpoint call. swapped says whether any model changed; err joins the
// reasons (*RefusedError) a model did not change when the registry names
// another version than the one serving. A version once refused for being
// invalid is not downloaded again; its error is returned again.
func (m *Manager) Reload(ctx context.Context) (swapped bool, err error) {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if m.closed.Load() {
		return false, errors.New("serving: Manager is closed")
	}
	var errs []error
	for _, s := range m.slots() {
		ok, err := m.reloadSlot(ctx, s)
		swapped = swapped || ok
		errs = append(errs, err)
	}
	return swapped, errors.Join(errs...)
}

// reloadSlot brings one slot to the version its stage or alias names.
// Under loadMu.
func (m *Manager) reloadSlot(ctx context.Context, s *slot) (bool, error) {
	cur := s.cur.Load()
	mv, err := m.resolve(ctx, s.follow)
	if errors.Is(err, ErrNoVersion) && s.role != RolePrimary {
		// The candidate left its stage (promoted, archived): stop routing to it.
		if cur != nil {
			m.log.Info("no version to serve any more; unloading", "role", s.role, "follow", s.follow.text, "version", cur.model.Version)
			m.uninstall(s)
			return true, nil
		}
		return false, nil
	}
	if err != nil {
		reason := ReasonRegistry
		if errors.Is(err, ErrNoVersion) {
			reason = ReasonNoVersion
		}
		return false, m.fail(&RefusedError{Role: s.role, Name: m.cfg.Name, Follow: s.follow.text, Reason: reason, Err: err}, cur)
	}
	if cur != nil && cur.model.Version == mv.Version {
		return false, nil
	}
	if rerr, ok := s.refused[mv.Version]; ok {
		return false, rerr
	}
	h, err := m.load(ctx, s, mv.Version)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) && re.Reason != ReasonDownload && ctx.Err() == nil {
			s.refused[mv.Version] = err
		}
		return false, m.fail(err, cur)
	}
	m.install(s, h)
	return true, nil
}

// fail counts and logs a load failure; the current model keeps serving.
func (m *Manager) fail(err error, cur *holder) error {
	var re *RefusedError
	if !errors.As(err, &re) {
		return err
	}
	m.met.failures.WithLabelValues(string(re.Role), re.Reason).Inc()
	serving := "none"
	if cur != nil {
		serving = cur.model.Version
	}
	m.log.Warn("model version refused; the serving one stays", "role", re.Role, "follow", re.Follow,
		"version", re.Version, "reason", re.Reason, "serving", serving, "err", re.Err)
	return err
}

// resolve asks the registry which version t names.
func (m *Manager) resolve(ctx context.Context, t target) (*mlflowclient.ModelVersion, error) {
	reg := m.cfg.Client.Registry
	if t.alias != "" {
		mv, err := reg.GetByAlias(ctx, m.cfg.Name, t.alias)
		if mlflowclient.IsNotFound(err) {
			return nil, fmt.Errorf("alias @%s of %s: %w", t.alias, m.cfg.Name, ErrNoVersion)
		}
		return mv, err
	}
	vs, err := reg.GetLatestVersions(ctx, m.cfg.Name, t.stage)
	if mlflowclient.IsNotFound(err) {
		return nil, fmt.Errorf("registered model %s: %w", m.cfg.Name, ErrNoVersion)
	}
	if err != nil {
		return nil, err
	}
	var best *mlflowclient.ModelVersion
	bestN := -1
	for _, v := range vs {
		if n, err := strconv.Atoi(v.Version); err == nil && n > bestN {
			best, bestN = v, n
		}
	}
	if best == nil {
		return nil, fmt.Errorf("stage %s of %s: %w", t.stage, m.cfg.Name, ErrNoVersion)
	}
	return best, nil
}

// open opens and verifies the model folder dir: ranker.Open checks the
// MLmodel, the ONNX scorer contract and that ONNX Runtime reproduces the
// stored example scores; then the width and the catalog are checked
// against the store's.
func (m *Manager) open(ctx context.Context, s *slot, version, dir string) (*holder, error) {
	refuse := func(reason string, err error) error {
		return &RefusedError{Role: s.role, Name: m.cfg.Name, Version: version, Follow: s.follow.text, Reason: reason, Err: err}
	}
	r, err := ranker.Open(ctx, dir, m.cfg.Tools, m.cfg.Caps, ranker.Options{ORTLibrary: m.cfg.ORTLibrary})
	if err != nil {
		return nil, refuse(ReasonVerify, err)
	}
	if r.Dim() != m.cfg.Dim {
		r.Close()
		return nil, refuse(ReasonDim, fmt.Errorf("the model takes %d-d embeddings, the store holds %d-d", r.Dim(), m.cfg.Dim))
	}
	cat := r.Package().Catalog
	if err := missing("capability", cat.CapabilityIDs, m.capSet); err != nil {
		r.Close()
		return nil, refuse(ReasonCatalog, err)
	}
	if err := missing("tool", cat.ToolIDs, m.toolSet); err != nil {
		r.Close()
		return nil, refuse(ReasonCatalog, err)
	}
	if n := len(m.capSet) - len(cat.CapabilityIDs); n > 0 {
		m.log.Info("the store has capabilities the model does not rank", "version", version, "count", n)
	}
	return newHolder(&Model{Name: m.cfg.Name, Version: version, Stage: s.follow.text, Ranker: r, Loaded: time.Now()}, m.log), nil
}

// missing names the ids not in set.
func missing(what string, ids []string, set map[string]bool) error {
	var out []string
	for _, id := range ids {
		if !set[id] {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil
	}
	n, more := len(out), ""
	if n > 5 {
		more = fmt.Sprintf(" and %d more", n-5)
		out = out[:5]
	}
	return fmt.Errorf("%d of the model's %s ids are not in the store: %s%s", n, what, strings.Join(out, ", "), more)
}

// install makes h the slot's model; the one it replaces closes after its
// last in-flight request. Under loadMu.
func (m *Manager) install(s *slot, h *holder) {
	old := s.cur.Swap(h)
	m.met.info.WithLabelValues(h.model.Name, h.model.Version, h.model.Stage, string(s.role)).Set(1)
	m.met.swaps.WithLabelValues(string(s.role)).Inc()
	if s.role == RolePrimary || s.role == RoleShadow {
		m.met.resetAgreement()
	}
	m.log.Info("model serving", "role", s.role, "follow", s.follow.text, "version", h.model.Version)
	if old != nil {
		m.met.info.DeleteLabelValues(old.model.Name, old.model.Version, old.model.Stage, string(s.role))
		old.release()
	}
	m.pruneCache()
}

// uninstall empties the slot. Under loadMu.
func (m *Manager) uninstall(s *slot) {
	if old := s.cur.Swap(nil); old != nil {
		m.met.info.DeleteLabelValues(old.model.Name, old.model.Version, old.model.Stage, string(s.role))
		old.release()
	}
}

// Close stops polling and releases the models; each closes after its last
// in-flight request. Acquire fails afterwards.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.loadMu.Lock()
	stop := m.stop
	m.loadMu.Unlock()
	if stop != nil {
		stop()
	}
	m.wg.Wait()
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	for _, s := range m.slots() {
		m.uninstall(s)
	}
	if m.tempDir {
		return os.RemoveAll(m.cacheDir)
	}
	return nil
}

// Ready reports whether a primary model is serving.
func (m *Manager) Ready() bool { return m.primary.cur.Load() != nil }

// Current is the primary model now serving, nil before the first load. It
// is for reporting (version, stage): rank through Acquire, which keeps the
// model open until release.
func (m *Manager) Current() *Model {
	if h := m.primary.cur.Load(); h != nil {
		return h.model
	}
	return nil
}

// Candidate is the canary model now serving, nil when there is none.
func (m *Manager) Candidate() *Model {
	if m.canary != nil {
		if h := m.canary.cur.Load(); h != nil {
			return h.model
		}
	}
	return nil
}

// Acquire implements Models: the canary model for the sessions the canary
// percentage selects (sticky: by a hash of session), else the primary.
func (m *Manager) Acquire(session string) (*Model, Role, func(), bool) {
	if m.canary != nil && canaryRoutes(session, m.cfg.Canary.Percent) {
		if h, release := m.canary.acquire(); h != nil {
			return h.model, RoleCanary, release, true
		}
	}
	if h, release := m.primary.acquire(); h != nil {
		return h.model, RolePrimary, release, true
	}
	return nil, RolePrimary, func() {}, false
}

// Shadow implements Models: the shadow model for a SampleRate share of the
// requests (sampled at random, not per session).
func (m *Manager) Shadow(string) (*Model, func(), bool) {
	if m.shadow == nil || rand.Float64() >= m.cfg.Shadow.SampleRate {
		return nil, func() {}, false
	}
	if h, release := m.shadow.acquire(); h != nil {
		return h.model, release, true
	}
	return nil, func() {}, false
}
