package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/capflow/capflow/evaluation/metrics"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/valuenet"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/replay"
)

// Config is the whole training configuration; it is logged as the run's
// params. DefaultConfig gives the design's values.
type Config struct {
	Model  shgat.Config  `json:"model"`
	Value  ValueConfig   `json:"value"`
	Replay replay.Config `json:"replay"`
	Reward Rewards       `json:"rewards"`

	// BetaAnneal says how PER's β rises from Replay.Beta: BetaAnnealRun
	// (DefaultConfig) to exactly 1 at the run's last planned step, Epochs ×
	// steps per epoch, whatever the run's length; BetaAnnealReplay as
	// Replay configures it (BetaStep per step, or BetaCalls). The IS
	// correction matters most at the end of training (Schaul et al.), and a
	// fixed step of 0.001 leaves β near 0.6 after a 200-step run.
	BetaAnneal string `json:"beta_anneal"`

	BatchSize int     `json:"batch_size"` // transitions per step (PER batch)
	LR        float64 `json:"lr"`         // Adam's base learning rate
	Beta1     float64 `json:"beta1"`
	Beta2     float64 `json:"beta2"`
	TMax      int     `json:"t_max"`   // cosine annealing period in steps
	EtaMin    float64 `json:"eta_min"` // cosine annealing floor
	ClipNorm  float64 `json:"clip_norm"`

	TDWeight       float64 `json:"td_weight"`       // weight of the IS-weighted TD (MSE) loss
	CalibLR        float64 `json:"calib_lr"`        // Adam learning rate of the TD head Q = a·score + b
	ListwiseWeight float64 `json:"listwise_weight"` // weight of the softmax loss over the full pool; 0: off

	// FusionSteps full-batch Adam steps (at FusionLR) fit the evidence
	// weights on the training sessions, with the dense scorer frozen,
	// before the main loop: learned fusion needs far larger moves on these
	// few weights than the main learning rate allows. 0: off.
	// KeyMemory gives every capability of the graph a learned key offset
	// (shgat.Config.KeyMemory): the trainer sizes it from the data.
	KeyMemory bool `json:"key_memory"`

	FusionSteps int     `json:"fusion_steps"`
	FusionLR    float64 `json:"fusion_lr"`

	Epochs        int     `json:"epochs"`
	StepsPerEpoch int     `json:"steps_per_epoch"` // 0: ⌈train transitions / batch⌉
	Patience      int     `json:"patience"`        // epochs without improvement before stopping
	MinDelta      float64 `json:"min_delta"`       // improvement that counts
	Monitor       string  `json:"monitor"`         // validation metric: mrr, hit1, hit3, hit5, ndcg5

	CheckpointEvery int    `json:"checkpoint_every"` // steps; 0: none
	CheckpointDir   string `json:"checkpoint_dir"`

	Seed uint64 `json:"seed"`
}

// ValueConfig configures the TD(λ) value network; its input width follows
// from the data (intent, capability and mean context embeddings).
type ValueConfig struct {
	Hidden []int   `json:"hidden"`
	Gamma  float64 `json:"gamma"`
	Lambda float64 `json:"lambda"`
	LR     float64 `json:"lr"`
}

// BetaAnneal values.
const (
	BetaAnnealRun    = "run"
	BetaAnnealReplay = "replay"
)

// DefaultConfig is the design's training configuration (sections 2.2-2.4),
// sized to train on Seal-Tools dev in a few minutes on two cores: an epoch
// is 25 steps of 32 transitions (about a fifth of the dev transitions),
// validated after each; L2 pulls the projections towards identity.
func DefaultConfig() Config {
	return Config{
		Model:      shgat.Config{Seed: 1, L2: 0.01, IntentParts: true},
		Value:      ValueConfig{Hidden: []int{256, 128, 64}, Gamma: 0.99, Lambda: 0.95, LR: 0.001},
		Replay:     replay.DefaultConfig(),
		Reward:     DefaultRewards(),
		BetaAnneal: BetaAnnealRun,
		BatchSize:  32, LR: 0.001, Beta1: 0.9, Beta2: 0.999, TMax: 1000, EtaMin: 1e-6, ClipNorm: 5,
		TDWeight: 1, CalibLR: 0.01, ListwiseWeight: 1, FusionSteps: 300, FusionLR: 0.05,
		Epochs: 8, StepsPerEpoch: 25, Patience: 3, MinDelta: 1e-4, Monitor: "ndcg5",
		Seed: 1,
	}
}

// ConfigError names a configuration field that is wrong.
type ConfigError struct{ Field, Reason string }

func (e *ConfigError) Error() string { return "train: config " + e.Field + ": " + e.Reason }

func (c Config) check() error {
	bad := func(f, format string, a ...any) error {
		return &ConfigError{Field: f, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case c.BatchSize < 1:
		return bad("batch_size", "must be ≥ 1, got %d", c.BatchSize)
	case !(c.LR > 0):
		return bad("lr", "must be positive, got %v", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1):
		return bad("beta1/beta2", "must be in [0,1), got %v/%v", c.Beta1, c.Beta2)
	case c.TMax < 1 || !(c.EtaMin >= 0 && c.EtaMin <= c.LR):
		return bad("t_max/eta_min", "t_max must be ≥ 1 and 0 ≤ eta_min ≤ lr, got %d/%v", c.TMax, c.EtaMin)
	case !(c.CalibLR > 0):
		return bad("calib_lr", "must be positive, got %v", c.CalibLR)
	case !(c.TDWeight >= 0) || !(c.ListwiseWeight >= 0) || c.TDWeight+c.ListwiseWeight == 0:
		return bad("td_weight/listwise_weight", "must be ≥ 0 and not both 0, got %v/%v", c.TDWeight, c.ListwiseWeight)
	case c.Epochs < 1 || c.StepsPerEpoch < 0 || c.Patience < 1:
		return bad("epochs/steps_per_epoch/patience", "got %d/%d/%d", c.Epochs, c.StepsPerEpoch, c.Patience)
	case !slices.Contains([]string{"mrr", "hit1", "hit3", "hit5", "ndcg5"}, c.Monitor):
		return bad("monitor", "must be mrr, hit1, hit3, hit5 or ndcg5, got %q", c.Monitor)
	case c.BetaAnneal != BetaAnnealRun && c.BetaAnneal != BetaAnnealReplay:
		return bad("beta_anneal", "must be %q or %q, got %q", BetaAnnealRun, BetaAnnealReplay, c.BetaAnneal)
	case c.CheckpointEvery < 0 || (c.CheckpointEvery > 0 && c.CheckpointDir == ""):
		return bad("checkpoint_every", "needs checkpoint_dir, got %d/%q", c.CheckpointEvery, c.CheckpointDir)
	}
	return nil
}

// Validation holds one evaluation of the model on the validation sessions.
type Validation struct {
	Epoch                        int
	Step                         int
	MRR, Hit1, Hit3, Hit5, NDCG5 float64
	Comp5                        float64 // COMP@5: every relevant capability in the top 5
	Queries                      int
	// PerQuery holds each query's nDCG@5 and reciprocal rank, in query
	// order, for paired comparisons of models on the same queries.
	PerQuery []QueryScore `json:"-"`
}

// QueryScore is one query's share of a Validation.
type QueryScore struct{ NDCG5, RR float64 }

func (v Validation) get(name string) float64 {
	switch name {
	case "hit1":
		return v.Hit1
	case "hit3":
		return v.Hit3
	case "hit5":
		return v.Hit5
	case "ndcg5":
		return v.NDCG5
	case "comp5":
		return v.Comp5
	}
	return v.MRR
}

// Trainer trains a SHGAT model on Data. Create it with NewTrainer (or
// Resume), then call Run.
type Trainer struct {
	cfg   Config
	data  *Data
	model *shgat.Model
	value *valuenet.Net
	buf   *replay.Buffer[int]
	adam  *Adam
	// calib is the TD head Q(s,a) = calib[0]·score + calib[1]: the TD
	// regression fits expected rewards through it, so fitting their scale
	// and offset never squeezes the ranking scores (the scorer has no bias
	// and its scores carry lexical evidence on a different scale).
	calib     []float64
	calibAdam *Adam
	pcg       *rand.PCG
	rng       *rand.Rand

	step, epoch, stepInEpoch int
	best                     *shgat.Params
	bestVal                  Validation
	bad                      int
	history                  []Validation
	started                  bool // the untrained model has been validated
	valueTrained             bool // the value net has had this epoch's pass
	done                     bool
	fused                    *shgat.Params           // right after the fusion fit (not checkpointed: for reports)
	positives                map[string]map[int]bool // per training session: the capabilities that succeeded in it
}

// NewTrainer builds the model, the value network and the replay buffer
// (filled with every training transition) from cfg.
func NewTrainer(cfg Config, data *Data) (*Trainer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := checkData(data); err != nil {
		return nil, err
	}
	mc := cfg.Model
	mc.Dim = data.Dim()
	if cfg.KeyMemory {
		mc.KeyMemory = len(data.Graph.Caps)
	}
	model, err := shgat.New(mc, max(data.Graph.Levels(), 1))
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, data: data, model: model, positives: map[string]map[int]bool{}}
	for _, s := range data.Train {
		if s.Success {
			if t.positives[s.Session] == nil {
				t.positives[s.Session] = map[int]bool{}
			}
			t.positives[s.Session][s.Cap] = true
		}
	}
	if t.value, err = valuenet.New(t.valueConfig()); err != nil {
		return nil, err
	}
	if t.buf, err = replay.New[int](t.replayConfig()); err != nil {
		return nil, err
	}
	for i := range data.Train {
		t.buf.Add(i)
	}
	t.adam = NewAdam(len(model.Params.Data), cfg.LR)
	t.adam.Beta1, t.adam.Beta2 = cfg.Beta1, cfg.Beta2
	t.calib, t.calibAdam = []float64{0.1, 0}, NewAdam(2, cfg.CalibLR)
	t.pcg = rand.NewPCG(cfg.Seed, 0x7a41)
	t.rng = rand.New(t.pcg)
	return t, nil
}

// replayConfig is cfg.Replay with β's horizon set to the planned steps
// under BetaAnnealRun: the buffer is sampled once per step, so its last
// planned Sample call is the run's last step.
func (t *Trainer) replayConfig() replay.Config {
	rc := t.cfg.Replay
	if t.cfg.BetaAnneal == BetaAnnealRun {
		rc.BetaCalls = t.PlannedSteps()
	}
	return rc
}

// PlannedSteps is Epochs × steps per epoch: the steps of a run that does
// not stop early.
func (t *Trainer) PlannedSteps() int { return t.cfg.Epochs * t.stepsPerEpoch() }

// ReplayConfig is the replay buffer's effective configuration (with β's
// horizon under BetaAnnealRun).
func (t *Trainer) ReplayConfig() replay.Config { return t.buf.Config() }

func (t *Trainer) valueConfig() valuenet.Config {
	v := t.cfg.Value
	return valuenet.Config{InputDim: 3 * t.data.Dim(), Hidden: v.Hidden, Gamma: v.Gamma, Lambda: v.Lambda, LR: v.LR, Seed: t.cfg.Seed}
}

func checkData(d *Data) error {
	switch {
	case d == nil || d.Graph == nil:
		return &DataError{Reason: "no graph"}
	case len(d.Graph.Caps) == 0 || len(d.Features.Caps)%len(d.Graph.Caps) != 0:
		return &DataError{Reason: "capability features do not match the graph"}
	case len(d.Train) == 0:
		return &DataError{Reason: "no training transitions"}
	case len(queries(d.Valid)) == 0:
		return &DataError{Reason: "no validation session with a successful experience"}
	case len(d.Pool) == 0:
		return &DataError{Reason: "empty candidate pool"}
	}
	for _, ss := range [][]Sample{d.Train, d.Valid} {
		for i, s := range ss {
			if s.Next >= len(ss) || s.Cap < 0 || s.Cap >= len(d.Graph.Caps) {
				return &DataError{Reason: fmt.Sprintf("sample %d has out-of-range links", i)}
			}
		}
	}
	return nil
}

// Model is the model being trained (the best one after Run).
func (t *Trainer) Model() *shgat.Model { return t.model }

// History lists every validation, the untrained model's first.
func (t *Trainer) History() []Validation { return slices.Clone(t.history) }

// Best is the best validation seen.
func (t *Trainer) Best() Validation { return t.bestVal }

// Fused is the model right after the fusion fit, before the main loop (nil
// without a fusion fit, or after Resume).
func (t *Trainer) Fused() *shgat.Model {
	if t.fused == nil {
		return nil
	}
	return &shgat.Model{Config: t.model.Config, Levels: t.model.Levels, Params: t.fused}
}

// Calibration is the TD head: Q(s,a) ≈ a·score + b.
func (t *Trainer) Calibration() (a, b float64) { return t.calib[0], t.calib[1] }

// Steps is the number of optimiser steps taken.
func (t *Trainer) Steps() int { return t.step }

// StepStats are one step's figures, logged to MLflow.
type StepStats struct {
	Loss, TDLoss, ListLoss, LR, Beta, MeanAbsTD, GradNorm float64
}

// Observer receives the trainer's progress; any field may be nil.
type Observer struct {
	Step       func(step int, s StepStats)
	Validation func(v Validation)
	Checkpoint func(step int, dir string)
}

// Run trains until Epochs are done or early stopping triggers, then puts
// the best weights (by the monitored validation metric, the untrained model
// included) back into the model. A cancelled context stops between steps
// with the context's error; the trainer can be checkpointed and resumed.
func (t *Trainer) Run(ctx context.Context, obs Observer, bar pipeline.Bar) error {
	if t.done {
		return nil
	}
	if !t.started {
		v, err := t.validate()
		if err != nil {
			return err
		}
		t.record(v, obs)
		if t.cfg.FusionSteps > 0 && len(t.data.Train) > 0 && t.data.Train[0].Evidence != nil {
			if err := t.fitFusion(ctx); err != nil {
				return err
			}
			t.fused = t.model.Params.Clone(t.model.Config)
			if v, err = t.validate(); err != nil {
				return err
			}
			t.record(v, obs)
		}
		t.started = true
	}
	steps := t.stepsPerEpoch()
	for t.epoch < t.cfg.Epochs {
		if !t.valueTrained {
			if err := t.trainValue(); err != nil {
				return err
			}
			t.valueTrained = true
		}
		for t.stepInEpoch < steps {
			if err := ctx.Err(); err != nil {
				return err
			}
			st, err := t.trainStep()
			if err != nil {
				return err
			}
			t.step++
			t.stepInEpoch++
			if obs.Step != nil {
				obs.Step(t.step, st)
			}
			if bar != nil {
				bar.Add(1)
			}
			if t.cfg.CheckpointEvery > 0 && t.step%t.cfg.CheckpointEvery == 0 {
				if err := t.Save(t.cfg.CheckpointDir); err != nil {
					return err
				}
				if obs.Checkpoint != nil {
					obs.Checkpoint(t.step, t.cfg.CheckpointDir)
				}
			}
		}
		t.epoch++
		t.stepInEpoch, t.valueTrained = 0, false
		v, err := t.validate()
		if err != nil {
			return err
		}
		if stop := t.record(v, obs); stop {
			break
		}
	}
	copy(t.model.Params.Data, t.best.Data)
	t.done = true
	return nil
}

func (t *Trainer) stepsPerEpoch() int {
	if t.cfg.StepsPerEpoch > 0 {
		return t.cfg.StepsPerEpoch
	}
	return (len(t.data.Train) + t.cfg.BatchSize - 1) / t.cfg.BatchSize
}

// record keeps the best weights and says whether to stop early.
func (t *Trainer) record(v Validation, obs Observer) (stop bool) {
	v.Epoch, v.Step = t.epoch, t.step
	t.history = append(t.history, v)
	if obs.Validation != nil {
		obs.Validation(v)
	}
	m := t.cfg.Monitor
	if t.best == nil || v.get(m) > t.bestVal.get(m)+t.cfg.MinDelta {
		t.best = t.model.Params.Clone(t.model.Config)
		t.bestVal, t.bad = v, 0
		return false
	}
	t.bad++
	return t.bad >= t.cfg.Patience
}

// valueInput is the value network's state-action vector: intent,
// capability embedding and the mean context tool embedding.
func (t *Trainer) valueInput(s Sample) []float64 {
	d := t.data.Dim()
	x := make([]float64, 3*d)
	copy(x, s.Intent)
	copy(x[d:], t.data.Features.Caps[s.Cap*d:(s.Cap+1)*d])
	for _, k := range s.Context {
		for j, v := range t.data.Features.Tools[k*d : (k+1)*d] {
			x[2*d+j] += v / float64(len(s.Context))
		}
	}
	return x
}

// trainValue runs one TD(λ) pass over every training session, in an order
// shuffled by the trainer's RNG.
func (t *Trainer) trainValue() error {
	var starts []int
	isNext := make([]bool, len(t.data.Train))
	for _, s := range t.data.Train {
		if s.Next >= 0 {
			isNext[s.Next] = true
		}
	}
	for i := range t.data.Train {
		if !isNext[i] {
			starts = append(starts, i)
		}
	}
	t.rng.Shuffle(len(starts), func(i, j int) { starts[i], starts[j] = starts[j], starts[i] })
	for _, i := range starts {
		var xs [][]float64
		var rs []float64
		for k := i; k >= 0; k = t.data.Train[k].Next {
			xs = append(xs, t.valueInput(t.data.Train[k]))
			rs = append(rs, t.data.Train[k].Reward)
		}
		if _, err := t.value.Episode(xs, rs); err != nil {
			return fmt.Errorf("train: value network: %w", err)
		}
	}
	return nil
}

// lambdaTargets returns the TD target of each sample in idx: its offline
// λ-return (valuenet.LambdaReturns, with net's γ and λ) over the rest of its
// own trajectory, following Next to the terminal step,
//
//	G[t] = r[t] + γ·((1−λ)·V(s[t+1]) + λ·G[t+1]),   G[T] = r[T] at the end,
//
// so a plan's reward, which arrives at its last step, reaches its first
// step through the real rewards of the steps between rather than through
// one value estimate alone. values gives V of the later states (sample
// indices), asked once per call for every state needed, each once. Next
// links only steps of one trajectory, so no target bootstraps from an
// unrelated candidate; a terminal sample's target is its reward.
func lambdaTargets(net *valuenet.Net, samples []Sample, idx []int, values func(ks []int) ([]float64, error)) ([]float64, error) {
	pos := map[int]int{}
	var need []int
	for _, i := range idx {
		steps := 0
		for k := samples[i].Next; k >= 0; k = samples[k].Next {
			if steps++; steps > len(samples) {
				return nil, &DataError{Reason: fmt.Sprintf("training sample %d: its trajectory loops (session %q)", i, samples[i].Session)}
			}
			if _, ok := pos[k]; !ok {
				pos[k] = len(need)
				need = append(need, k)
			}
		}
	}
	var vs []float64
	if len(need) > 0 {
		var err error
		if vs, err = values(need); err != nil {
			return nil, fmt.Errorf("train: value network: %w", err)
		}
	}
	out := make([]float64, len(idx))
	for j, i := range idx {
		// V(s[i]) is no part of its own target: LambdaReturns reads values
		// from index 1 on.
		vals, rewards := []float64{0}, []float64{samples[i].Reward}
		for k := samples[i].Next; k >= 0; k = samples[k].Next {
			vals, rewards = append(vals, vs[pos[k]]), append(rewards, samples[k].Reward)
		}
		g, err := net.LambdaReturns(vals, rewards, true)
		if err != nil {
			return nil, fmt.Errorf("train: λ-return of training sample %d: %w", i, err)
		}
		out[j] = g[0]
	}
	return out, nil
}

// trainStep is the design's step: PER batch → SHGAT scores → TD targets
// from the value network → IS-weighted loss → backward → Adam → |δ| back to
// the buffer.
func (t *Trainer) trainStep() (StepStats, error) {
	cfg, data := t.cfg, t.data
	batch, err := t.buf.Sample(t.rng, min(cfg.BatchSize, t.buf.Len()))
	if err != nil {
		return StepStats{}, err
	}
	n := len(batch.Items)
	examples := make([]shgat.Example, n)
	rows := make([][][]float64, n)
	sel := make([]int, n)
	for i, k := range batch.Items {
		s := data.Train[k]
		examples[i], sel[i] = t.example(s)
		rows[i] = rowsOf(t.model, s.Intent, s.Parts)
	}
	pb := expandRows(examples, rows)
	// TD targets: λ-returns over the rest of each transition's own
	// trajectory (r alone at its end).
	targets, err := lambdaTargets(t.value, data.Train, batch.Items, func(ks []int) ([]float64, error) {
		xs := make([][]float64, len(ks))
		for j, k := range ks {
			xs[j] = t.valueInput(data.Train[k])
		}
		return t.value.ValueBatch(xs)
	})
	if err != nil {
		return StepStats{}, err
	}

	out, err := t.model.Forward(shgat.Input{
		Graph: data.Graph, Features: data.Features, Reliability: data.Reliability,
		Batch: pb.Examples, Train: true, Rand: t.rng,
	})
	if err != nil {
		return StepStats{}, err
	}
	best, arg := pb.combine(out.Scores)
	var st StepStats
	dS := make([][]float64, n)
	tdAbs := make([]float64, n)
	dCalib := make([]float64, 2)
	inv := 1 / float64(n)
	a, b := t.calib[0], t.calib[1]
	for i := range n {
		scores := best[i]
		dS[i] = make([]float64, len(scores))
		w := batch.Weights[i]
		s := scores[sel[i]]
		delta := targets[i] - (a*s + b)
		tdAbs[i] = math.Abs(delta)
		st.MeanAbsTD += tdAbs[i] * inv
		st.TDLoss += w * delta * delta * inv
		g := -cfg.TDWeight * 2 * w * delta * inv
		dS[i][sel[i]] += g * a
		dCalib[0] += g * s
		dCalib[1] += g
		if s := data.Train[batch.Items[i]]; cfg.ListwiseWeight > 0 && s.Success {
			loss, g := listwise(scores, sel[i], examples[i].Candidates, t.positives[s.Session])
			st.ListLoss += w * loss * inv
			for j, v := range g {
				dS[i][j] += cfg.ListwiseWeight * w * v * inv
			}
		}
	}
	grads, l2, err := out.Backward(pb.spread(dS, arg))
	if err != nil {
		return StepStats{}, err
	}
	st.Loss = cfg.TDWeight*st.TDLoss + cfg.ListwiseWeight*st.ListLoss + l2
	st.GradNorm = ClipNorm(grads.Data, cfg.ClipNorm)
	st.LR = CosineLR(cfg.LR, cfg.EtaMin, cfg.TMax, t.step)
	st.Beta = batch.Beta
	t.adam.Update(t.model.Params.Data, grads.Data, st.LR)
	t.calibAdam.Update(t.calib, dCalib, cfg.CalibLR)
	if _, err := t.buf.UpdatePriorities(batch.IDs, tdAbs); err != nil {
		return StepStats{}, err
	}
	return st, nil
}

// example scores a sample's selected capability against the pool; sel is
// its position among the candidates.
func (t *Trainer) example(s Sample) (ex shgat.Example, sel int) {
	pool := t.data.Pool
	sel = slices.Index(pool, s.Cap)
	cands := pool
	if sel < 0 {
		cands = append(slices.Clone(pool), s.Cap)
		sel = len(cands) - 1
	}
	return shgat.Example{Intent: s.Intent, Context: s.Context, Candidates: cands, Evidence: gatherEvidence(s.Evidence, cands, len(t.model.Config.Evidence))}, sel
}

// validate ranks the pool for every validation session with the current
// weights (no dropout).
func (t *Trainer) validate() (Validation, error) {
	return Evaluate(t.model, t.data, t.data.Valid)
}

// Evaluate ranks data.Pool for every session of samples that has a success
// and averages MRR, Hit@1/3/5 and nDCG@5 (evaluation/metrics).
func Evaluate(m *shgat.Model, data *Data, samples []Sample) (Validation, error) {
	qs := queries(samples)
	batch := make([]shgat.Example, len(qs))
	rows := make([][][]float64, len(qs))
	for i, q := range qs {
		batch[i] = shgat.Example{Intent: q.intent, Context: q.context, Candidates: data.Pool, Evidence: gatherEvidence(q.evidence, data.Pool, len(m.Config.Evidence))}
		rows[i] = rowsOf(m, q.intent, q.parts)
	}
	pb := expandRows(batch, rows)
	out, err := m.Forward(shgat.Input{Graph: data.Graph, Features: data.Features, Reliability: data.Reliability, Batch: pb.Examples})
	if err != nil {
		return Validation{}, err
	}
	scores, _ := pb.combine(out.Scores)
	v := Validation{Queries: len(qs)}
	ranked := make([]int, len(data.Pool))
	for i, q := range qs {
		for r, j := range metrics.Rank(scores[i]) {
			ranked[r] = data.Pool[j]
		}
		v.add(ranked, q.relevant)
	}
	v.mean()
	return v, nil
}

// listwise is the softmax cross-entropy of the selected candidate sel over
// the candidates, −log p_sel, and its gradient by score, p_j − [j = sel].
// The session's other successes (positives, by capability) are left out of
// the softmax: a query that needs four capabilities must rank all four
// first, so none of them is a negative of another (a list-wise multi-label
// loss). Without that, each success's loss pushed the other three down.
func listwise(scores []float64, sel int, candidates []int, positives map[int]bool) (float64, []float64) {
	masked := scores
	if len(positives) > 1 {
		masked = slices.Clone(scores)
		for j, c := range candidates {
			if j != sel && positives[c] {
				masked[j] = math.Inf(-1)
			}
		}
	}
	p := metrics.Softmax(masked, 1)
	loss := -math.Log(max(p[sel], 1e-300))
	p[sel]--
	return loss, p
}
