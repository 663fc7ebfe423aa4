package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/models/shgat"
)

func unit(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	s = math.Sqrt(s)
	for i := range v {
		v[i] /= s
	}
	return v
}

// synthetic builds a learnable task: intents are a fixed random linear map of
// the relevant capability's tools' mean embedding plus noise, so cosine
// similarity is a weak ranker and learning W_q/W_k helps.
func synthetic(t *testing.T, d, nQueries int) *Data {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 1))
	var tools []featurestore.Tool
	for i := range 40 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("t%d", i)})
	}
	var caps []featurestore.Capability
	for c := range 12 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("c%d", c), Members: []string{
			fmt.Sprintf("t%d", (3*c)%40), fmt.Sprintf("t%d", (3*c+1)%40), fmt.Sprintf("t%d", (3*c+2)%40)}})
	}
	for p := range 3 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("p%d", p), Members: []string{
			fmt.Sprintf("c%d", 4*p), fmt.Sprintf("c%d", 4*p+1), fmt.Sprintf("c%d", 4*p+2), fmt.Sprintf("c%d", 4*p+3)}})
	}
	g, err := shgat.NewGraph(tools, caps)
	if err != nil {
		t.Fatal(err)
	}
	feats := shgat.Features{Tools: make([]float64, len(tools)*d), Caps: make([]float64, len(caps)*d)}
	for i := range tools {
		v := make([]float64, d)
		for k := range v {
			v[k] = rng.NormFloat64()
		}
		copy(feats.Tools[i*d:], unit(v))
	}
	for c := range caps {
		v := make([]float64, d)
		for _, m := range g.Members[c] {
			src := feats.Tools
			if m >= len(tools) {
				src, m = feats.Caps, m-len(tools)
			}
			for k := range v {
				v[k] += src[m*d+k] + 0.5*rng.NormFloat64()
			}
		}
		copy(feats.Caps[c*d:], unit(v))
	}
	rot := make([]float64, d*d)
	for i := range rot {
		rot[i] = rng.NormFloat64() / math.Sqrt(float64(d))
	}
	var exps []featurestore.Experience
	intents := map[string][]float64{}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for q := range nQueries {
		rel := rng.IntN(12)
		x := make([]float64, d)
		for k := range d {
			for j := range d {
				x[k] += feats.Caps[rel*d+j] * rot[j*d+k]
			}
			x[k] += 0.3 * rng.NormFloat64()
		}
		text := fmt.Sprintf("query %d", q)
		intents[featurestore.IntentHash(text, nil)] = unit(x)
		cands := []int{rel}
		for len(cands) < 4 {
			if c := rng.IntN(12); c != rel {
				cands = append(cands, c)
			}
		}
		rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		for r, c := range cands {
			o := featurestore.OutcomeFailure
			if c == rel {
				o = featurestore.OutcomeSuccess
			}
			exps = append(exps, featurestore.Experience{Intent: text, SelectedCapability: caps[c].ID, Rank: r + 1,
				Outcome: o, Timestamp: at, SessionID: fmt.Sprintf("s%d", q)})
			at = at.Add(time.Minute)
		}
	}
	sp, err := SplitBySession(Transitions(exps, DefaultRewards()), 0.25, 7)
	if err != nil {
		t.Fatal(err)
	}
	data := &Data{Graph: g, Features: feats, Pool: PoolOfLevels(g, []int{0})}
	if data.Train, err = Resolve(context.Background(), g, sp.Train, intents, nil, nil); err != nil {
		t.Fatal(err)
	}
	if data.Valid, err = Resolve(context.Background(), g, sp.Valid, intents, nil, nil); err != nil {
		t.Fatal(err)
	}
	return data
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Model = shgat.Config{Heads: 2, Seed: 3, Dropout: 0.1, L2: 1e-5}
	cfg.Value.Hidden = []int{16, 8}
	cfg.Replay.Capacity = 1000
	cfg.BatchSize = 16
	cfg.LR = 0.01
	cfg.TMax = 200
	cfg.Epochs = 8
	cfg.StepsPerEpoch = 10
	cfg.Patience = 8
	return cfg
}

// TestTrainingLearns: on a task cosine cannot solve, training raises
// validation MRR well above the untrained model's, and the returned model is
// the best one seen.
func TestTrainingLearns(t *testing.T) {
	data := synthetic(t, 16, 300)
	tr, err := NewTrainer(smallConfig(), data)
	if err != nil {
		t.Fatal(err)
	}
	var steps int
	if err := tr.Run(context.Background(), Observer{Step: func(int, StepStats) { steps++ }}, nil); err != nil {
		t.Fatal(err)
	}
	h := tr.History()
	for _, v := range h {
		t.Logf("epoch %d step %d: mrr %.3f hit1 %.3f ndcg5 %.3f", v.Epoch, v.Step, v.MRR, v.Hit1, v.NDCG5)
	}
	if steps == 0 || tr.Best().MRR < h[0].MRR+0.1 {
		t.Fatalf("best MRR %.3f vs untrained %.3f: training did not learn", tr.Best().MRR, h[0].MRR)
	}
	final, err := Evaluate(tr.Model(), data, data.Valid)
	if err != nil {
		t.Fatal(err)
	}
	if final.MRR != tr.Best().MRR {
		t.Fatalf("final model MRR %.4f, best %.4f: best weights were not restored", final.MRR, tr.Best().MRR)
	}
}

// TestNeverWorseThanUntrained: with a learning rate that wrecks the model,
// early stopping still returns weights at least as good as the untrained
// ones on validation.
func TestNeverWorseThanUntrained(t *testing.T) {
	data := synthetic(t, 16, 120)
	cfg := smallConfig()
	cfg.LR, cfg.EtaMin, cfg.Epochs, cfg.Patience = 5, 0, 3, 2
	tr, err := NewTrainer(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), Observer{}, nil); err != nil {
		t.Fatal(err)
	}
	final, _ := Evaluate(tr.Model(), data, data.Valid)
	if untrained := tr.History()[0]; final.MRR < untrained.MRR {
		t.Fatalf("final MRR %.4f below the untrained %.4f", final.MRR, untrained.MRR)
	}
}

// TestResumeIsExact: a run checkpointed mid-epoch and resumed in a new
// trainer ends with bit-identical weights to an uninterrupted run.
func TestResumeIsExact(t *testing.T) {
	data := synthetic(t, 8, 80)
	cfg := smallConfig()
	cfg.Epochs, cfg.StepsPerEpoch = 3, 5
	full, _ := NewTrainer(cfg, data)
	if err := full.Run(context.Background(), Observer{}, nil); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg.CheckpointEvery, cfg.CheckpointDir = 7, dir // mid-epoch 2
	part, _ := NewTrainer(cfg, data)
	ctx, cancel := context.WithCancel(context.Background())
	err := part.Run(ctx, Observer{Checkpoint: func(step int, _ string) {
		if step == 7 {
			cancel()
		}
	}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	resumed, err := Resume(dir, data)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Steps() != 7 {
		t.Fatalf("resumed at step %d, want 7", resumed.Steps())
	}
	if err := resumed.Run(context.Background(), Observer{}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := full.Model().Params.Data, resumed.Model().Params.Data
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("parameter %d: uninterrupted %v, resumed %v", i, a[i], b[i])
		}
	}
	if full.Steps() != resumed.Steps() {
		t.Fatalf("steps %d vs %d", full.Steps(), resumed.Steps())
	}
	var ce *CheckpointError
	if _, err := Resume(t.TempDir(), data); !errors.As(err, &ce) {
		t.Fatalf("empty dir: %v", err)
	}
}

// TestBetaReachesOneAtLastStep: by default PER's β rises from Replay.Beta
// to exactly 1 at the run's last planned step, however short the run (a
// fixed 0.001 per step would end at 0.411 here); BetaAnnealReplay keeps the
// replay config's own schedule.
func TestBetaReachesOneAtLastStep(t *testing.T) {
	data := synthetic(t, 8, 60)
	run := func(anneal string) (betas []float64, tr *Trainer) {
		t.Helper()
		cfg := smallConfig()
		cfg.Epochs, cfg.StepsPerEpoch, cfg.Patience = 3, 4, 10 // no early stop
		cfg.BetaAnneal = anneal
		tr, err := NewTrainer(cfg, data)
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Run(context.Background(), Observer{Step: func(_ int, st StepStats) { betas = append(betas, st.Beta) }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return betas, tr
	}
	betas, tr := run(BetaAnnealRun)
	if len(betas) != 12 || tr.PlannedSteps() != 12 || tr.ReplayConfig().BetaCalls != 12 {
		t.Fatalf("%d steps, planned %d, replay horizon %d: want 12", len(betas), tr.PlannedSteps(), tr.ReplayConfig().BetaCalls)
	}
	if betas[0] != 0.4 || betas[len(betas)-1] != 1 {
		t.Fatalf("β went %v → %v, want 0.4 → exactly 1: %v", betas[0], betas[len(betas)-1], betas)
	}
	for i := 1; i < len(betas); i++ {
		if !(betas[i] > betas[i-1]) {
			t.Fatalf("β not rising at step %d: %v", i+1, betas)
		}
	}

	betas, _ = run(BetaAnnealReplay)
	if last := betas[len(betas)-1]; math.Abs(last-(0.4+11*0.001)) > 1e-12 {
		t.Fatalf("BetaAnnealReplay: last β %v, want Beta + 11·BetaStep = 0.411", last)
	}

	cfg := smallConfig()
	cfg.BetaAnneal = "auto"
	var ce *ConfigError
	if _, err := NewTrainer(cfg, data); !errors.As(err, &ce) || ce.Field != "beta_anneal" {
		t.Fatalf("BetaAnneal %q: %v, want a *ConfigError on beta_anneal", cfg.BetaAnneal, err)
	}
}

// A checkpoint written before Config.BetaAnneal existed resumes with the
// schedule it was written under (the replay config's), not an error.
func TestResumeCheckpointWithoutBetaAnneal(t *testing.T) {
	data := synthetic(t, 8, 60)
	cfg := smallConfig()
	cfg.Epochs, cfg.StepsPerEpoch = 1, 2
	cfg.CheckpointEvery, cfg.CheckpointDir = 2, t.TempDir()
	tr, err := NewTrainer(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), Observer{}, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.CheckpointDir, ckptState)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	delete(st["config"].(map[string]any), "beta_anneal")
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Resume(cfg.CheckpointDir, data)
	if err != nil {
		t.Fatalf("old checkpoint: %v", err)
	}
	if r.cfg.BetaAnneal != BetaAnnealReplay || r.ReplayConfig() != tr.ReplayConfig() {
		t.Fatalf("resumed with %q and replay %+v, want %q and the saved %+v", r.cfg.BetaAnneal, r.ReplayConfig(), BetaAnnealReplay, tr.ReplayConfig())
	}
}
