// Command bench-quality is the ablation of the SHGAT model on Seal-Tools:
// every variant of train.AblationVariants trained on the dev split with the
// same data and seed (early stopping and the fusion fit on a held-out part
// of dev), each reported on the 700 test_in_domain queries (level-0
// capabilities ranked; never used for a decision), as `capflow train
// --ablation` does. It prints one line per variant on stdout:
//
//	bench-quality set=seal-test-in model=<variant> ndcg5=<x> mrr=<x> hit1=<x> comp5=<x>
//
// model=full is the default model, model=evidence its fusion fit alone
// (SHGAT untrained), model=bm25 and model=cosine the baselines; then
//
//	bench-quality set=seal-test-in full_minus_evidence_ndcg5=<x> ci95_low=<x> ci95_high=<x> queries=<n>
//
// (the paired difference and its 95% interval). With MLFLOW_TRACKING_URI set
// the ablation is one MLflow run with a child run per variant and the
// Markdown table as an artifact; -no-tracking skips it.
//
// The store is the one bench-train prepares (.local/bench-train: Seal-Tools,
// features with the real all-MiniLM-L6-v2, tool texts in the embedding
// cache), made once and reused.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/bench"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

func main() {
	bench.Main("bench-quality", func(ctx context.Context) error { return run(ctx, slog.Default()) })
}

func run(ctx context.Context, log *slog.Logger) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir := flag.String("dir", filepath.Join(root, ".local", "bench-train"), "folder of the prepared store (shared with bench-train)")
	modelDir := flag.String("model-dir", filepath.Join(root, ".local", "models", "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2 ONNX folder")
	only := flag.String("variants", "", "comma-separated trained variants to run (default: all of train.AblationVariants; full always runs)")
	noTracking := flag.Bool("no-tracking", false, "do not log to MLflow")
	experiment := flag.String("experiment", "capflow-bench-quality", "MLflow experiment")
	flag.Parse()

	onnx, st, err := bench.OpenSealTools(ctx, *dir, *modelDir, log)
	if err != nil {
		return err
	}
	defer onnx.Close()
	defer st.Close()

	variants := train.AblationVariants()
	if *only != "" {
		want := strings.Split(*only, ",")
		variants = slices.DeleteFunc(variants, func(v train.Variant) bool {
			return v.Name != train.VariantFull && !slices.Contains(want, v.Name)
		})
	}
	cfg := train.DefaultConfig()
	base := train.StageConfig{
		Train: cfg, Encoder: textembed.Cached(onnx, st),
		Source:       train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, Rewards: cfg.Reward},
		ReportPrefix: featurestore.SealToolsTestPrefix,
	}
	r := &pipeline.Runner{Store: st, Logger: log, Experiment: *experiment, RunName: "ablation", Progress: pipeline.NoProgress}
	if !*noTracking && os.Getenv("MLFLOW_TRACKING_URI") != "" {
		if r.Client, err = mlflowclient.New(); err != nil {
			return err
		}
	}
	ab, res, err := train.Ablate(ctx, r, base, variants)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, ab.Markdown())
	for _, row := range ab.Rows {
		v := row.Report
		fmt.Printf("bench-quality set=seal-test-in model=%s ndcg5=%.4f mrr=%.4f hit1=%.4f comp5=%.4f\n", row.Variant, v.NDCG5, v.MRR, v.Hit1, v.Comp5)
	}
	if d, ok := ab.Paired(train.VariantFull, train.VariantEvidence); ok {
		fmt.Printf("bench-quality set=seal-test-in full_minus_evidence_ndcg5=%.4f ci95_low=%.4f ci95_high=%.4f queries=%d\n", d.Mean, d.Low, d.High, d.Queries)
	}
	if res != nil && res.ParentRunID != "" {
		log.Info("MLflow", "parent_run", res.ParentRunID, "experiment", res.ExperimentID)
	}
	return nil
}
