// Command bench-node2vec compares capflow's Node2Vec with PecanPy (walks)
// plus gensim (skip-gram) on the Seal-Tools tool↔field graph, under the same
// p, q, walk length, walks per node, window, dimensions, negatives and
// epochs, and scores both embeddings with the same link-prediction code
// (node2vec.LinkPredictionAUC: Hadamard features, logistic regression) on
// the same held-out edges. It prints medians over -reps repetitions as one
// line on stdout:
//
//	bench-node2vec capflow_s=... pecanpy_s=... ratio=... capflow_auc=... pecanpy_auc=...
//
// capflow_s times node2vec.Train (alias tables, walks, training) in-process
// with -workers goroutines. pecanpy_s is measured inside python (see
// scripts/bench_node2vec_pecanpy.py): preprocessing, walks and Word2Vec, the
// steady-state run after one that pays numba's JIT compilation (reported on
// stderr as pecanpy_cold_s). Progress and details go to stderr.
//
// Environment: CAPFLOW_PYTHON (python with pecanpy and gensim), CAPFLOW_ROOT
// (repository root, to find the script; defaults to the directory holding
// go.mod), CAPFLOW_SEALTOOLS_DIR (defaults to shared/datasets/seal-tools
// beside the repository, as the tests use).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/capflow/capflow/internal/bench"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/models/node2vec"
)

func main() { bench.Main("bench-node2vec", run) }

type config struct {
	n2v         node2vec.Config
	reps        int
	holdOut     float64
	holdOutSeed uint64
	mode        string
	pyRuns      int
	sample      float64
	cpuProfile  string
	keep        bool
}

func parseFlags() (config, error) {
	cfg := config{n2v: node2vec.DefaultConfig()}
	c := &cfg.n2v
	flag.IntVar(&cfg.reps, "reps", 5, "repetitions (medians are reported); repetition r uses seed+r on both sides")
	flag.IntVar(&c.Dimensions, "dim", c.Dimensions, "embedding dimensions")
	flag.IntVar(&c.WalkLength, "walk-length", c.WalkLength, "nodes per walk, the start included (PecanPy gets this minus 1 steps)")
	flag.IntVar(&c.WalksPerNode, "walks", c.WalksPerNode, "walks per node")
	flag.IntVar(&c.Window, "window", c.Window, "skip-gram window")
	flag.Float64Var(&c.P, "p", c.P, "return parameter p")
	flag.Float64Var(&c.Q, "q", c.Q, "in-out parameter q")
	flag.IntVar(&c.Negative, "negative", c.Negative, "negative samples")
	flag.IntVar(&c.Epochs, "epochs", c.Epochs, "skip-gram epochs")
	flag.IntVar(&c.Workers, "workers", runtime.NumCPU(), "capflow goroutines, gensim workers and numba threads")
	flag.Uint64Var(&c.Seed, "seed", c.Seed, "training seed of the first repetition")
	flag.Float64Var(&cfg.holdOut, "holdout", 0.1, "fraction of tool—field edges held out")
	flag.Uint64Var(&cfg.holdOutSeed, "holdout-seed", 7, "hold-out seed (the link-prediction test's)")
	flag.StringVar(&cfg.mode, "pecanpy-mode", "PreComp", "PecanPy mode: PreComp or SparseOTF (or any PecanPy class)")
	flag.IntVar(&cfg.pyRuns, "pecanpy-runs", 2, "PecanPy pipeline runs per repetition; the last is timed (the first pays numba's JIT)")
	flag.Float64Var(&cfg.sample, "gensim-sample", 0, "gensim's frequent-word subsampling (capflow has none; gensim's default is 1e-3)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of capflow's Train calls to this file")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (edge list, PecanPy vectors)")
	flag.Parse()
	if cfg.reps < 1 || cfg.pyRuns < 1 {
		return cfg, errors.New("-reps and -pecanpy-runs must be positive")
	}
	if c.Workers < 1 {
		return cfg, errors.New("-workers must be positive")
	}
	return cfg, c.Validate()
}

type result struct {
	seconds, auc float64
}

func run(ctx context.Context) error {
	cfg, err := parseFlags()
	if err != nil {
		return err
	}
	python, script, err := bench.PythonScript("bench_node2vec_pecanpy.py")
	if err != nil {
		return err
	}
	data := os.Getenv("CAPFLOW_SEALTOOLS_DIR")
	if data == "" {
		root := filepath.Dir(filepath.Dir(script)) // the repository
		data = filepath.Join(filepath.Dir(root), "shared", "datasets", "seal-tools")
	}

	g, cands, err := node2vec.SealToolsGraph(ctx, data)
	if err != nil {
		return err
	}
	split, err := node2vec.HoldOut(g, cands, cfg.holdOut, cfg.holdOutSeed)
	if err != nil {
		return err
	}
	slog.Info("graph", "nodes", g.NumNodes(), "edges", g.NumEdges(), "train_edges", split.Train.NumEdges(),
		"test_pos", len(split.TestPos), "test_neg", len(split.TestNeg))

	tmp, err := os.MkdirTemp("", "bench-node2vec-")
	if err != nil {
		return err
	}
	if cfg.keep {
		slog.Info("keeping", "dir", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	edges := filepath.Join(tmp, "train.edg")
	if err := writeEdgeList(edges, split.Train); err != nil {
		return err
	}

	var prof *os.File
	if cfg.cpuProfile != "" {
		if prof, err = os.Create(cfg.cpuProfile); err != nil {
			return err
		}
		defer prof.Close()
	}

	var ours, theirs []result
	for r := range cfg.reps {
		n2v := cfg.n2v
		n2v.Seed += uint64(r)

		if prof != nil {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		start := time.Now()
		emb, err := node2vec.Train(ctx, split.Train, n2v)
		elapsed := time.Since(start).Seconds()
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil // one profile: the first repetition
		}
		if err != nil {
			return fmt.Errorf("capflow train: %w", err)
		}
		auc, err := node2vec.LinkPredictionAUC(ctx, emb, split, 0)
		if err != nil {
			return fmt.Errorf("capflow AUC: %w", err)
		}
		ours = append(ours, result{elapsed, auc})
		slog.Info("capflow", "rep", r, "seconds", round(elapsed), "auc", round(auc))

		py, err := runPecanPy(ctx, python, script, cfg, n2v, edges, filepath.Join(tmp, "pecanpy.emb"))
		if err != nil {
			return err
		}
		pemb, err := readVectors(filepath.Join(tmp, "pecanpy.emb"), split.Train)
		if err != nil {
			return err
		}
		pauc, err := node2vec.LinkPredictionAUC(ctx, pemb, split, 0)
		if err != nil {
			return fmt.Errorf("pecanpy AUC: %w", err)
		}
		theirs = append(theirs, result{py.WarmS, pauc})
		slog.Info("pecanpy", "rep", r, "mode", py.Mode, "seconds", round(py.WarmS), "cold_s", round(py.ColdS),
			"walk_s", round(py.WalkS), "w2v_s", round(py.W2VS), "tokens", py.Tokens, "auc", round(pauc))
	}

	// Held-out AUC varies by about 0.01–0.015 from seed to seed on this
	// split, so the medians of a few repetitions can differ by that much
	// with no real difference: the means and spreads say how far to trust
	// the gap.
	for _, side := range []struct {
		name string
		rs   []result
	}{{"capflow", ours}, {"pecanpy", theirs}} {
		m, sd := meanSD(side.rs, func(r result) float64 { return r.auc })
		slog.Info("auc", "side", side.name, "mean", round(m), "sd", round(sd), "reps", len(side.rs))
	}
	cs, ps := median(ours, func(r result) float64 { return r.seconds }), median(theirs, func(r result) float64 { return r.seconds })
	fmt.Printf("bench-node2vec capflow_s=%.3f pecanpy_s=%.3f ratio=%.3f capflow_auc=%.4f pecanpy_auc=%.4f\n",
		cs, ps, cs/ps, median(ours, func(r result) float64 { return r.auc }), median(theirs, func(r result) float64 { return r.auc }))
	return nil
}

// pyResult is the script's JSON line.
type pyResult struct {
	ColdS  float64 `json:"cold_s"`
	WarmS  float64 `json:"warm_s"`
	WalkS  float64 `json:"walk_s"`
	W2VS   float64 `json:"w2v_s"`
	Tokens int     `json:"tokens"`
	Mode   string  `json:"mode"`
}

func runPecanPy(ctx context.Context, python, script string, cfg config, n2v node2vec.Config, edges, out string) (pyResult, error) {
	args, err := json.Marshal(map[string]any{
		"edges": edges, "out": out, "mode": cfg.mode,
		"p": n2v.P, "q": n2v.Q, "walk_nodes": n2v.WalkLength, "walks_per_node": n2v.WalksPerNode,
		"window": n2v.Window, "dim": n2v.Dimensions, "negative": n2v.Negative, "epochs": n2v.Epochs,
		"workers": n2v.Workers, "seed": n2v.Seed,
		"alpha": n2v.LearningRate, "min_alpha": n2v.LearningRate * 1e-4, "sample": cfg.sample,
		"runs": cfg.pyRuns,
	})
	if err != nil {
		return pyResult{}, err
	}
	cmd := exec.CommandContext(ctx, python, script, string(args))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return pyResult{}, fmt.Errorf("pecanpy script: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var res pyResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return pyResult{}, fmt.Errorf("pecanpy script output %q: %w", lines[len(lines)-1], err)
	}
	return res, nil
}

// writeEdgeList writes g's edges once each as "i<TAB>j<TAB>w", nodes named
// by their index in g so that no id needs quoting.
func writeEdgeList(path string, g *node2vec.Graph) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, id := range g.IDs() {
		ns, ws := g.Neighbors(id)
		for k, n := range ns {
			if j, _ := g.Index(n); i < j {
				fmt.Fprintf(w, "%d\t%d\t%s\n", i, j, strconv.FormatFloat(ws[k], 'g', -1, 64))
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readVectors reads word2vec text format keyed by g's node indices into
// embeddings over g's ids; a node PecanPy did not embed (isolated, so in no
// edge) gets the zero vector, as capflow gives it.
func readVectors(path string, g *node2vec.Graph) (*node2vec.Embeddings, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("%s: empty", path)
	}
	var count, dim int
	if _, err := fmt.Sscan(sc.Text(), &count, &dim); err != nil || dim < 1 {
		return nil, fmt.Errorf("%s: header %q: want \"count dim\"", path, sc.Text())
	}
	n := g.NumNodes()
	data := make([]float32, n*dim)
	for line := 2; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) != dim+1 {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", path, line, len(fields), dim+1)
		}
		i, err := strconv.Atoi(fields[0])
		if err != nil || i < 0 || i >= n {
			return nil, fmt.Errorf("%s:%d: node %q is not an index of the graph", path, line, fields[0])
		}
		for k, s := range fields[1:] {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			data[i*dim+k] = float32(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return node2vec.NewEmbeddings(g.IDs(), dim, data)
}

func median(rs []result, key func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = key(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func meanSD(rs []result, key func(result) float64) (mean, sd float64) {
	for _, r := range rs {
		mean += key(r)
	}
	mean /= float64(len(rs))
	if len(rs) < 2 {
		return mean, 0
	}
	for _, r := range rs {
		sd += (key(r) - mean) * (key(r) - mean)
	}
	return mean, math.Sqrt(sd / float64(len(rs)-1))
}

func round(x float64) float64 { return float64(int64(x*1e4+0.5)) / 1e4 }
