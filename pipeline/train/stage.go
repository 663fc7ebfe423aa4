package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
)

// StageName names the train stage's nested run.
const StageName = "train"

// Values the stage publishes for later stages (pipeline.Env.Set).
const (
	ValueModelURI     = "model_uri"     // models:/<name>/<version>
	ValueModelVersion = "model_version" // registered version
	ValueModelDir     = "model_dir"     // the local MLflow Model folder
)

// Params of the stage's run that say which queries it trained on: the
// pseudo-experience query prefix ("" when it trained on logged
// experiences) and the validation split (SplitBySessionHash or
// SplitByTime, the fraction, the seed). Evaluation reads them back.
const (
	ParamPseudoPrefix  = "data.pseudo_prefix"
	ParamSplit         = "data.split"
	ParamValidFraction = "data.valid_fraction"
	ParamSplitSeed     = "data.split_seed"
)

// StageConfig configures the train stage.
type StageConfig struct {
	Train   Config
	Source  Source // Store is taken from the pipeline
	Encoder textembed.Encoder

	// RegisteredModel is the registry name (default mlmodel.DefaultName);
	// Stage the stage a new version moves to (default Staging; "None": stay).
	RegisteredModel string
	Stage           string
	NoRegister      bool // package and log, but do not register

	// ReportPrefix, when set, also evaluates on the store's queries whose id
	// has this prefix (Seal-Tools: "test_in_domain-"): the trained model,
	// the untrained one, the one right after the fusion fit, and plain cosine
	// similarity, logged as report_*. Nothing is selected on it. It must not
	// overlap Source.PseudoPrefix (neither a prefix of the other).
	ReportPrefix string

	// OutDir keeps the model folder and the checkpoints (default: a
	// temporary directory, removed after logging).
	OutDir string
}

// Stage is the training pipeline stage: store → transitions → PER → SHGAT
// trainer → MLflow Model folder → logged model → registered version.
type Stage struct{ cfg StageConfig }

// NewStage checks cfg.
func NewStage(cfg StageConfig) (*Stage, error) {
	if cfg.Encoder == nil {
		return nil, &ConfigError{Field: "encoder", Reason: "missing"}
	}
	if err := cfg.Train.check(); err != nil {
		return nil, err
	}
	if r, p := cfg.ReportPrefix, cfg.Source.PseudoPrefix; r != "" && p != "" && (strings.HasPrefix(r, p) || strings.HasPrefix(p, r)) {
		// One prefix inside the other ("dev-" and "dev-easy-") shares
		// queries: the report would then include queries training selected
		// on (fitted, validated, stopped early on).
		return nil, &ConfigError{Field: "report_prefix", Reason: fmt.Sprintf("%q overlaps the training query prefix %q (pseudo_prefix): the reported queries must be ones training never selects on", r, p)}
	}
	switch cfg.Stage {
	case "":
		cfg.Stage = string(mlflowclient.StageStaging)
	case string(mlflowclient.StageStaging), string(mlflowclient.StageProduction), string(mlflowclient.StageNone):
	default:
		return nil, &ConfigError{Field: "stage", Reason: fmt.Sprintf("must be Staging, Production or None, got %q", cfg.Stage)}
	}
	if cfg.RegisteredModel == "" {
		cfg.RegisteredModel = mlmodel.DefaultName
	}
	return &Stage{cfg: cfg}, nil
}

// Name is "train".
func (s *Stage) Name() string { return StageName }

// Summary is what one training run produced.
type Summary struct {
	Steps          int
	Seconds        float64
	Train, Valid   int // transitions
	Best           Validation
	History        []Validation
	Report         map[string]Validation // trained, fused, untrained, cosine (with ReportPrefix)
	ModelDir       string
	ModelURI       string // models:/name/version when registered
	ModelVersion   string
	LoggedModelID  string
	FeatureVersion string
}

// Run trains, logs and registers (see StageConfig).
func (s *Stage) Run(ctx context.Context, env *pipeline.Env) error {
	_, err := s.Train(ctx, env)
	return err
}

// Train is Run returning the summary.
func (s *Stage) Train(ctx context.Context, env *pipeline.Env) (*Summary, error) {
	cfg := s.cfg
	src, err := stageSource(env, cfg.Source, cfg.Encoder, cfg.Train.Reward)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	data, err := Load(ctx, src, cfg.Train.Model)
	if err != nil {
		return nil, err
	}
	if src.PseudoPrefix != "" && !src.PseudoSingleStep && data.Plans == 0 {
		env.Logger.Warn("no query has its calls: every pseudo-session is single-step (re-import the dataset with this capflow to train multi-step plans)",
			"prefix", src.PseudoPrefix)
	}
	env.Logger.Info("training data", "train", len(data.Train), "valid", len(data.Valid), "pool", len(data.Pool), "plans", data.Plans,
		"capabilities", len(data.Graph.Caps), "tools", len(data.Graph.Tools), "seconds", time.Since(t0).Seconds())

	out := cfg.OutDir
	if out == "" {
		if out, err = os.MkdirTemp("", "capflow-train-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(out)
	}
	tcfg := cfg.Train
	if tcfg.CheckpointEvery > 0 && tcfg.CheckpointDir == "" {
		tcfg.CheckpointDir = filepath.Join(out, "checkpoint")
	}
	tr, err := NewTrainer(tcfg, data.Data)
	if err != nil {
		return nil, err
	}
	params := flatten("", tcfg)
	// The buffer's β horizon as used, not as configured (0 under BetaAnnealRun).
	params["replay.BetaCalls"] = strconv.Itoa(tr.ReplayConfig().BetaCalls)
	params["planned_steps"] = strconv.Itoa(tr.PlannedSteps())
	params["data.train_transitions"] = strconv.Itoa(len(data.Train))
	params["data.valid_transitions"] = strconv.Itoa(len(data.Valid))
	params["data.pool"] = strconv.Itoa(len(data.Pool))
	params[ParamPseudoPrefix] = src.PseudoPrefix
	// The split, so that evaluation can tell held-out queries from training
	// ones (HeldOutQueries) and refuse to select on the latter.
	params[ParamSplit] = SplitBySessionHash
	if src.Temporal {
		params[ParamSplit] = SplitByTime
	}
	params[ParamValidFraction] = strconv.FormatFloat(src.validFraction(), 'g', -1, 64)
	params[ParamSplitSeed] = strconv.FormatUint(src.SplitSeed, 10)
	params["data.pseudo_single_step"] = strconv.FormatBool(src.PseudoSingleStep)
	params["data.evidence"] = strconv.FormatBool(!src.NoEvidence)
	params["encoder"] = cfg.Encoder.Model().Name
	params["encoder.version"] = cfg.Encoder.Model().Version
	if err := env.Tracker.LogParams(ctx, params); err != nil {
		return nil, fmt.Errorf("train: log params: %w", err)
	}

	untrained := tr.Model().Params.Clone(tr.Model().Config)
	total := tr.PlannedSteps()
	bar := env.Progress.Start("train", total)
	curves := &curves{}
	var logErr error
	keep := func(err error) {
		if err != nil && logErr == nil {
			logErr = err
		}
	}
	t1 := time.Now()
	err = tr.Run(ctx, Observer{
		Step: func(step int, st StepStats) {
			curves.step(step, st.Loss)
			keep(env.Tracker.LogMetrics(ctx, int64(step), map[string]float64{
				"loss": st.Loss, "td_loss": st.TDLoss, "listwise_loss": st.ListLoss, "lr": st.LR, "beta": st.Beta,
				"mean_abs_td": st.MeanAbsTD, "grad_norm": st.GradNorm,
			}))
		},
		Validation: func(v Validation) {
			curves.valid(v.Step, v.MRR)
			m := v.metrics("valid_")
			m["epoch"] = float64(v.Epoch)
			keep(env.Tracker.LogMetrics(ctx, int64(v.Step), m))
			env.Logger.Info("validation", "epoch", v.Epoch, "step", v.Step, "mrr", v.MRR, "ndcg5", v.NDCG5, "hit1", v.Hit1)
		},
	}, bar)
	bar.Done()
	if err != nil {
		return nil, err
	}
	if logErr != nil {
		env.Logger.Warn("metric logging failed", "err", logErr)
	}
	sum := &Summary{Steps: tr.Steps(), Seconds: time.Since(t1).Seconds(), Train: len(data.Train), Valid: len(data.Valid),
		Best: tr.Best(), History: tr.History(), FeatureVersion: data.FeatureVersion}
	final := tr.Best().metrics("best_valid_")
	final["train_seconds"], final["steps"] = sum.Seconds, float64(sum.Steps)
	a, b := tr.Calibration()
	final["td_head_a"], final["td_head_b"] = a, b
	for k, w := range tr.Model().Params.Evid {
		final["evidence_weight_"+tr.Model().Config.Evidence[k]] = w
	}

	if cfg.ReportPrefix != "" {
		if sum.Report, err = s.report(ctx, data, tr, untrained); err != nil {
			return nil, err
		}
		for name, v := range sum.Report {
			for k, x := range v.metrics("report_" + name + "_") {
				final[k] = x
			}
		}
	}
	if err := env.Tracker.LogMetrics(ctx, int64(sum.Steps), final); err != nil {
		return nil, fmt.Errorf("train: log metrics: %w", err)
	}
	if err := s.artifacts(ctx, env, tr, tcfg, curves, out); err != nil {
		return nil, err
	}
	if err := s.publish(ctx, env, tr, data, final, out, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// report evaluates the trained and untrained models and cosine similarity
// on the report queries.
func (s *Stage) report(ctx context.Context, data *Loaded, tr *Trainer, untrained *shgat.Params) (map[string]Validation, error) {
	trained := tr.Model()
	qs, err := featurestore.QueriesWithPrefix(ctx, data.store, s.cfg.ReportPrefix)
	if err != nil {
		return nil, fmt.Errorf("train: report queries: %w", err)
	}
	var exps []featurestore.Experience
	for _, q := range qs {
		exps = append(exps, featurestore.Experience{Intent: q.Intent, ContextTools: q.ContextTools})
	}
	intents, err := IntentEmbeddings(ctx, data.store, s.cfg.Encoder, exps)
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(qs))
	for i, q := range qs {
		texts[i] = q.Intent
	}
	if err := data.Parts.Prepare(ctx, texts); err != nil {
		return nil, err
	}
	var rows *Parts
	if trained.Config.IntentParts {
		rows = data.Parts
	}
	samples, err := QuerySamples(ctx, data.Graph, qs, intents, data.Evidence, rows)
	if err != nil {
		return nil, err
	}
	out := map[string]Validation{}
	if out["trained"], err = Evaluate(trained, data.Data, samples); err != nil {
		return nil, err
	}
	u := &shgat.Model{Config: trained.Config, Levels: trained.Levels, Params: untrained}
	if out["untrained"], err = Evaluate(u, data.Data, samples); err != nil {
		return nil, err
	}
	if f := tr.Fused(); f != nil {
		if out["fused"], err = Evaluate(f, data.Data, samples); err != nil {
			return nil, err
		}
	}
	out["cosine"] = EvaluateCosine(data.Data, samples)
	text := make(map[string]string, len(qs))
	for _, q := range qs {
		text[q.ID] = q.Intent
	}
	if out["bm25"], err = EvaluateBM25(data.Data, data.Tools, data.Capabilities, samples, text); err != nil {
		return nil, err
	}
	return out, nil
}

// artifacts logs the best checkpoint, the config and the training curves.
func (s *Stage) artifacts(ctx context.Context, env *pipeline.Env, tr *Trainer, cfg Config, c *curves, out string) error {
	ck := filepath.Join(out, "best.safetensors")
	if err := tr.Model().Save(ck); err != nil {
		return err
	}
	conf, _ := json.MarshalIndent(cfg, "", "  ")
	png := filepath.Join(out, "training_curves.png")
	errs := []error{
		env.Tracker.LogArtifact(ctx, ck, "checkpoint"),
		env.Tracker.LogArtifactBytes(ctx, "config/train.json", conf),
	}
	if err := c.plot(png); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, env.Tracker.LogArtifact(ctx, png, "plots"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("train: artifacts: %w", err)
	}
	return nil
}

// publish packages the best model as an MLflow Model folder and, when
// tracking, logs it to the stage's run, registers it and moves it to the
// configured stage.
func (s *Stage) publish(ctx context.Context, env *pipeline.Env, tr *Trainer, data *Loaded, metrics map[string]float64, out string, sum *Summary) error {
	m := tr.Model()
	reps, err := m.Represent(data.Graph, data.Features)
	if err != nil {
		return err
	}
	cat, err := shgat.NewCatalog(data.Graph, reps, data.Reliability, data.FeatureVersion)
	if err != nil {
		return err
	}
	for _, v := range data.ToolText {
		cat.ToolText = append(cat.ToolText, v...)
	}
	dir := filepath.Join(out, "model")
	md := map[string]string{
		mlmodel.MetaDatasetDigest: datasetDigest(data),
		// What serving must reproduce: the intent encoder and the features.
		"encoder": s.cfg.Encoder.Model().Name, "encoder_version": s.cfg.Encoder.Model().Version,
		"evidence": strings.Join(m.Config.Evidence, ","), "candidate_levels": fmt.Sprint(s.cfg.Source.CandidateLevels),
	}
	if s.cfg.Source.NoEvidence {
		md["evidence"] = ""
	}
	if c := gitCommit(); c != "" {
		md[mlmodel.MetaGitCommit] = c
	}
	if err := shgat.WriteMLflowModel(dir, m, cat, shgat.PackageOptions{Metadata: md, Metrics: metrics}); err != nil {
		return err
	}
	sum.ModelDir = dir
	env.Set(ValueModelDir, dir)
	if env.Client == nil || env.Tracker.RunID() == "" {
		env.Logger.Info("model packaged (not tracking: not logged or registered)", "dir", dir)
		return nil
	}
	lm, err := mlmodel.Log(ctx, env.Client, env.Tracker.RunID(), dir, mlmodel.LogOptions{Name: "shgat", Step: int64(sum.Steps)})
	if err != nil {
		return fmt.Errorf("train: log model: %w", err)
	}
	sum.LoggedModelID = lm.ID()
	if s.cfg.NoRegister {
		return nil
	}
	f, err := mlmodel.Read(dir)
	if err != nil {
		return err
	}
	mv, err := mlmodel.Register(ctx, env.Client, mlmodel.RegisterOptions{
		Name: s.cfg.RegisteredModel, ModelID: lm.ID(), RunID: env.Tracker.RunID(), Tags: mlmodel.VersionTags(f),
		Description: fmt.Sprintf("SHGAT trained on %d transitions; best validation MRR %.4f", sum.Train, sum.Best.MRR),
	})
	if err != nil {
		return fmt.Errorf("train: register: %w", err)
	}
	sum.ModelVersion = mv.Version
	sum.ModelURI = "models:/" + s.cfg.RegisteredModel + "/" + mv.Version
	if s.cfg.Stage != string(mlflowclient.StageNone) {
		if _, err := mlmodel.Promote(ctx, env.Client, s.cfg.RegisteredModel, mv.Version, mlflowclient.Stage(s.cfg.Stage)); err != nil {
			return fmt.Errorf("train: move to %s: %w", s.cfg.Stage, err)
		}
	}
	env.Set(ValueModelURI, sum.ModelURI)
	env.Set(ValueModelVersion, mv.Version)
	env.Logger.Info("model registered", "uri", sum.ModelURI, "stage", s.cfg.Stage, "logged_model", lm.ID())
	return nil
}

// datasetDigest fingerprints what the model was trained on: the catalog and
// the training transitions.
func datasetDigest(d *Loaded) string {
	h := sha256.New()
	for _, id := range d.Graph.Tools {
		fmt.Fprintf(h, "t\x00%s\n", id)
	}
	for i, id := range d.Graph.Caps {
		fmt.Fprintf(h, "c\x00%s\x00%v\n", id, d.Graph.Members[i])
	}
	for _, t := range d.Split.Train {
		e := t.Experience
		fmt.Fprintf(h, "e\x00%s\x00%s\x00%s\x00%s\n", t.Session, e.Intent, e.SelectedCapability, e.Outcome)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// gitCommit is the commit the binary was built from, or the working tree's.
func gitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// flatten turns a JSON-encodable config into dotted MLflow params.
func flatten(prefix string, v any) map[string]string {
	b, _ := json.Marshal(v)
	var m any
	_ = json.Unmarshal(b, &m)
	out := map[string]string{}
	var walk func(p string, x any)
	walk = func(p string, x any) {
		switch t := x.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(strings.TrimPrefix(p+"."+k, "."), t[k])
			}
		default:
			j, _ := json.Marshal(t)
			out[p] = strings.Trim(string(j), `"`)
		}
	}
	walk(prefix, m)
	return out
}

func (v Validation) metrics(prefix string) map[string]float64 {
	return map[string]float64{
		prefix + "mrr": v.MRR, prefix + "hit_at_1": v.Hit1, prefix + "hit_at_3": v.Hit3, prefix + "hit_at_5": v.Hit5,
		prefix + "ndcg_at_5": v.NDCG5, prefix + "comp_at_5": v.Comp5,
	}
}

// stageSource is a stage's data source: the pipeline's store, the stage's
// encoder, and the training config's rewards unless the source sets its own.
func stageSource(env *pipeline.Env, src Source, enc textembed.Encoder, rewards Rewards) (Source, error) {
	if env.Store == nil {
		return Source{}, &ConfigError{Field: "store", Reason: "the pipeline has no feature store"}
	}
	src.Store, src.Encoder = env.Store, enc
	if src.Rewards == (Rewards{}) {
		src.Rewards = rewards
	}
	return src, nil
}
