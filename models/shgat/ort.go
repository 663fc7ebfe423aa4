package shgat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/capflow/capflow/models/textembed"
)

// ORTOptions configures OpenORT. Zero fields take defaults.
type ORTOptions struct {
	// LibraryPath is the ONNX Runtime shared library, used if this is the
	// process's first textembed.InitORT (default
	// $ONNXRUNTIME_SHARED_LIBRARY_PATH).
	LibraryPath string
	// Dim, if positive, is the D the model must have.
	Dim int
	// IntraOpThreads is ORT's thread count per Score call (default 1: a
	// request is a few matrix-vector products, and a server gets its
	// parallelism from concurrent requests, not from splitting one).
	IntraOpThreads int
}

// ModelError is an exported scorer model that cannot be used: missing,
// unreadable, not an ONNX model ORT accepts, or with inputs and outputs
// other than the contract of ExportScorer.
type ModelError struct {
	Path, Reason string
	Err          error // the underlying error, if any
}

func (e *ModelError) Error() string {
	msg := fmt.Sprintf("shgat: scorer model %s: %s", e.Path, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ModelError) Unwrap() error { return e.Err }

// ErrORTClosed is returned by Score after Close.
var ErrORTClosed = errors.New("shgat: ORT scorer is closed")

// ORTScorer runs an exported scorer (ExportScorer) with ONNX Runtime. It is
// safe for concurrent use: ORT sessions allow concurrent runs, and Close
// waits for the runs in flight.
type ORTScorer struct {
	path string
	dim  int
	nf   int // evidence features per candidate

	mu     sync.RWMutex
	sess   *ort.DynamicAdvancedSession
	closed bool
}

// ioSpec is one input or output of the contract; dims are -1 for a dynamic
// axis, 0 for D and -2 for F (the number of evidence features).
type ioSpec struct {
	name string
	dims []int64
}

// scorerIO is the contract of ExportScorer, inputs in the order Score feeds
// them.
func scorerIO() (inputs []ioSpec, output ioSpec) {
	return []ioSpec{
		{InputIntent, []int64{-1, 0}},
		{InputContext, []int64{-1, -1, 0}},
		{InputContextKeys, []int64{-1, -1, 0}},
		{InputContextMask, []int64{-1, -1}},
		{InputCandidates, []int64{-1, 0}},
		{InputReliability, []int64{-1}},
		{InputEvidence, []int64{-1, -1, -2}},
	}, ioSpec{OutputScores, []int64{-1, -1}}
}

// axisName names the dynamic axes in messages.
func axisName(spec ioSpec, i int) string {
	switch {
	case spec.name == OutputScores && i == 1, spec.name == InputCandidates && i == 0, spec.name == InputReliability,
		spec.name == InputEvidence && i == 1:
		return "candidates"
	case i == 0:
		return "batch"
	}
	return "context"
}

// OpenORT loads an exported scorer from path. Before creating the session it
// checks the model's inputs and output against the contract (names, float32,
// ranks, dynamic batch/context/candidates axes, one fixed D shared by all,
// equal to opts.Dim if that is set) and reports any mismatch as a
// *ModelError; it then runs one tiny request to prove the graph executes.
// It initialises ONNX Runtime (textembed.InitORT) if needed.
func OpenORT(ctx context.Context, path string, opts ORTOptions) (*ORTScorer, error) {
	if opts.IntraOpThreads == 0 {
		opts.IntraOpThreads = 1
	}
	switch {
	case opts.Dim < 0:
		return nil, &ConfigError{Field: "ORTOptions.Dim", Reason: fmt.Sprintf("is %d, must not be negative", opts.Dim)}
	case opts.IntraOpThreads < 0:
		return nil, &ConfigError{Field: "ORTOptions.IntraOpThreads", Reason: fmt.Sprintf("is %d, must not be negative", opts.IntraOpThreads)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, &ModelError{Path: path, Reason: "file does not exist", Err: err}
	case err != nil:
		return nil, &ModelError{Path: path, Reason: "cannot read the file", Err: err}
	case fi.IsDir():
		return nil, &ModelError{Path: path, Reason: "is a directory, want an .onnx file"}
	}
	if err := textembed.InitORT(opts.LibraryPath); err != nil {
		return nil, fmt.Errorf("shgat: open scorer %s: %w", path, err)
	}

	// Reading the I/O needs a session; an unoptimised one loads fastest.
	probe, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("shgat: ORT session options: %w", err)
	}
	defer probe.Destroy()
	if err := probe.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, fmt.Errorf("shgat: ORT session options: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, probe)
	if err != nil {
		return nil, &ModelError{Path: path, Reason: "ONNX Runtime cannot load it (a truncated or corrupt file, not an ONNX model, or an operator it lacks)", Err: err}
	}
	dim, nf, err := checkScorerIO(path, ins, outs, opts.Dim)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("shgat: ORT session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		return nil, fmt.Errorf("shgat: ORT intra-op threads: %w", err)
	}
	specs, out := scorerIO()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	sess, err := ort.NewDynamicAdvancedSession(path, names, []string{out.name}, so)
	if err != nil {
		return nil, &ModelError{Path: path, Reason: "ONNX Runtime cannot create a session", Err: err}
	}
	s := &ORTScorer{path: path, dim: dim, nf: nf, sess: sess}

	// One small request proves the graph runs and answers [B,N]; the I/O
	// declarations alone do not. Distinct sizes catch mixed-up axes.
	const pb, pc, pn = 2, 3, 5
	if _, err := s.Score(Batch{B: pb, C: pc, N: pn, Intent: make([]float32, pb*dim), Context: make([]float32, pb*pc*dim),
		ContextKeys: make([]float32, pb*pc*dim), ContextMask: make([]float32, pb*pc), Candidates: make([]float32, pn*dim), Reliability: []float32{1, 1, 1, 1, 1},
		Evidence: make([]float32, pb*pn*nf)}); err != nil {
		s.Close()
		return nil, &ModelError{Path: path, Reason: "a test request fails", Err: err}
	}
	return s, nil
}

// checkScorerIO checks the model's declared inputs and outputs against the
// contract and returns D and F.
func checkScorerIO(path string, ins, outs []ort.InputOutputInfo, wantDim int) (int, int, error) {
	bad := func(format string, a ...any) error {
		return &ModelError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	specs, outSpec := scorerIO()
	var want []string
	for _, s := range specs {
		want = append(want, s.name)
	}
	for _, in := range ins {
		if !slices.Contains(want, in.Name) {
			return 0, 0, bad("unexpected input %q (the scorer takes exactly %s)", in.Name, strings.Join(want, ", "))
		}
	}
	dim, nf := int64(0), int64(0)
	dimFrom := ""
	check := func(kind string, spec ioSpec, info *ort.InputOutputInfo) error {
		if info == nil {
			return bad("missing %s %q", kind, spec.name)
		}
		if info.OrtValueType != ort.ONNXTypeTensor || info.DataType != ort.TensorElementDataTypeFloat {
			return bad("%s %q is %s, want a float32 tensor", kind, spec.name, info.String())
		}
		got := info.Dimensions
		if len(got) != len(spec.dims) {
			return bad("%s %q has rank %d %v, want rank %d", kind, spec.name, len(got), got, len(spec.dims))
		}
		for i, w := range spec.dims {
			switch {
			case w == -1 && got[i] >= 0:
				return bad("%s %q axis %d (%s) is fixed at %d, want a dynamic axis", kind, spec.name, i, axisName(spec, i), got[i])
			case w == 0 && got[i] <= 0:
				return bad("%s %q axis %d (D) is dynamic, want a fixed D", kind, spec.name, i)
			case w == 0 && wantDim > 0 && got[i] != int64(wantDim):
				return bad("%s %q has D=%d, want D=%d (ORTOptions.Dim)", kind, spec.name, got[i], wantDim)
			case w == 0 && dim > 0 && got[i] != dim:
				return bad("%s %q has D=%d but %s has D=%d", kind, spec.name, got[i], dimFrom, dim)
			case w == 0:
				dim, dimFrom = got[i], spec.name
			case w == -2 && got[i] <= 0:
				return bad("%s %q axis %d (evidence features) is %d, want a fixed count ≥ 1", kind, spec.name, i, got[i])
			case w == -2:
				nf = got[i]
			}
		}
		return nil
	}
	for _, spec := range specs {
		if err := check("input", spec, findIO(ins, spec.name)); err != nil {
			return 0, 0, err
		}
	}
	// Outputs beyond scores are tolerated: the session never fetches them.
	if err := check("output", outSpec, findIO(outs, outSpec.name)); err != nil {
		return 0, 0, err
	}
	return int(dim), int(nf), nil
}

func findIO(l []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
	for i := range l {
		if l[i].Name == name {
			return &l[i]
		}
	}
	return nil
}

// Dim is the model's D.
func (s *ORTScorer) Dim() int { return s.dim }

// Features is the model's F, the number of evidence features per candidate.
func (s *ORTScorer) Features() int { return s.nf }

// Close releases the ORT session after the runs in flight finish; Score then
// returns ErrORTClosed. Close is idempotent.
func (s *ORTScorer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.sess.Destroy()
}

// Batch is one Score call's inputs, row-major float32.
type Batch struct {
	B, C, N     int       // requests, context slots per request, candidates
	Intent      []float32 // [B×D]
	Context     []float32 // [B×C×D]: tool representations; pad requests with fewer tools to C
	ContextKeys []float32 // [B×C×D]: the same tools' attention keys (Projection.Context)
	ContextMask []float32 // [B×C]: 1 = real tool, 0 = padding
	Candidates  []float32 // [N×D]: the capability keys in query space (Projection.Candidates)
	Reliability []float32 // [N]
	Evidence    []float32 // [B×N×F]; nil: no evidence (zeros)
}

// Score scores b.B requests against b.N candidates and returns scores
// [B×N] row-major, as Scorer.Score does for each request. C may be 0 (no
// context for any request).
//
// Lengths, mask values (0 or 1) and reliabilities (finite, > 0) are checked
// (an *InputError); the vectors themselves are not scanned for NaN, which
// would cost as much as scoring.
func (s *ORTScorer) Score(in Batch) ([]float32, error) {
	d := s.dim
	b, c, n := in.B, in.C, in.N
	bad := func(field, format string, a ...any) error {
		return &InputError{Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case b < 0:
		return nil, bad("b", "is %d, must not be negative", b)
	case c < 0:
		return nil, bad("c", "is %d, must not be negative", c)
	case n < 0:
		return nil, bad("n", "is %d, must not be negative", n)
	case len(in.Intent) != b*d:
		return nil, bad(InputIntent, "has %d values, want b·D = %d·%d = %d", len(in.Intent), b, d, b*d)
	case len(in.Context) != b*c*d:
		return nil, bad(InputContext, "has %d values, want b·c·D = %d·%d·%d = %d", len(in.Context), b, c, d, b*c*d)
	case len(in.ContextKeys) != b*c*d:
		return nil, bad(InputContextKeys, "has %d values, want b·c·D = %d·%d·%d = %d", len(in.ContextKeys), b, c, d, b*c*d)
	case len(in.ContextMask) != b*c:
		return nil, bad(InputContextMask, "has %d values, want b·c = %d·%d = %d", len(in.ContextMask), b, c, b*c)
	case len(in.Candidates) != n*d:
		return nil, bad(InputCandidates, "has %d values, want n·D = %d·%d = %d", len(in.Candidates), n, d, n*d)
	case len(in.Reliability) != n:
		return nil, bad(InputReliability, "has %d values, want n = %d", len(in.Reliability), n)
	case in.Evidence != nil && len(in.Evidence) != b*n*s.nf:
		return nil, bad(InputEvidence, "has %d values, want b·n·F = %d·%d·%d = %d", len(in.Evidence), b, n, s.nf, b*n*s.nf)
	}
	for i, m := range in.ContextMask {
		if m != 0 && m != 1 {
			return nil, bad(InputContextMask, "[%d] is %v, want 0 or 1", i, m)
		}
	}
	for i, r := range in.Reliability {
		if !(r > 0) || math.IsInf(float64(r), 1) {
			return nil, bad(InputReliability, "[%d] is %v, want a finite factor > 0", i, r)
		}
	}
	out := make([]float32, b*n)
	if b == 0 || n == 0 {
		return out, nil // nothing to score; c = 0 does run (ORT takes the empty axis)
	}
	ev := in.Evidence
	if ev == nil {
		ev = make([]float32, b*n*s.nf)
	}
	b64, c64, n64, d64 := int64(b), int64(c), int64(n), int64(d)
	var values []ort.Value
	defer func() {
		for _, v := range values {
			v.Destroy()
		}
	}()
	for _, t := range []struct {
		data  []float32
		shape ort.Shape
	}{
		{in.Intent, ort.NewShape(b64, d64)},
		{in.Context, ort.NewShape(b64, c64, d64)},
		{in.ContextKeys, ort.NewShape(b64, c64, d64)},
		{in.ContextMask, ort.NewShape(b64, c64)},
		{in.Candidates, ort.NewShape(n64, d64)},
		{in.Reliability, ort.NewShape(n64)},
		{ev, ort.NewShape(b64, n64, int64(s.nf))},
		{out, ort.NewShape(b64, n64)},
	} {
		// NewTensor wraps the Go slice; nothing is copied.
		v, err := ort.NewTensor(t.shape, t.data)
		if err != nil {
			return nil, fmt.Errorf("shgat: ORT tensor %v: %w", t.shape, err)
		}
		values = append(values, v)
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrORTClosed
	}
	if err := s.sess.Run(values[:7], values[7:]); err != nil {
		return nil, fmt.Errorf("shgat: ORT scorer %s: %w", s.path, err)
	}
	return out, nil
}
