// Command train trains capflow's SHGAT scorer from Go: what `capflow train`
// does, as a library user writes it.
//
//	make demo                          # once: Seal-Tools in .local/demo, with features
//	eval "$(bash scripts/services.sh env)"
//	go run ./examples/train
//
// What it does:
//   - opens the embedded feature store the demo filled;
//   - opens the all-MiniLM-L6-v2 ONNX encoder when `make deps` converted it,
//     else the offline hashing encoder (each has its own demo store, see
//     scripts/demo.sh);
//   - builds features first only if the store has none;
//   - trains on pseudo-experiences from the Seal-Tools dev queries with the
//     default configuration, under an MLflow run (MLFLOW_TRACKING_URI);
//   - reports the trained model, the untrained one and cosine similarity on
//     the test_in_domain queries, and registers the model as capflow-shgat
//     (-registered-model) in Staging.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/features"
	"github.com/capflow/capflow/pipeline/train"
)

const miniLM = ".local/models/all-MiniLM-L6-v2"

func main() {
	storePath := flag.String("store", "", "embedded store (default .local/demo/store-minilm.db, or store-hashing.db without the MiniLM model)")
	model := flag.String("registered-model", mlmodel.DefaultName, "registered model of the new version")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *storePath, *model); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, storePath, model string) error {
	// The encoder decides the text dimension, so it comes first: MiniLM
	// gives 384-d vectors; the demo builds its hashing store at 1024.
	var enc textembed.Encoder
	store := ".local/demo/store-minilm.db"
	if _, err := os.Stat(filepath.Join(miniLM, "model.onnx")); err == nil {
		onnx, err := textembed.OpenONNX(ctx, miniLM, textembed.ONNXOptions{}) // ORT from $ONNXRUNTIME_SHARED_LIBRARY_PATH
		if err != nil {
			return err
		}
		defer onnx.Close()
		enc = onnx
	} else {
		fmt.Fprintf(os.Stderr, "%s not found (run make deps): using the hashing encoder\n", miniLM)
		if enc, err = textembed.NewHashing(textembed.HashingConfig{Dim: 1024}); err != nil {
			return err
		}
		store = ".local/demo/store-hashing.db"
	}
	if storePath != "" {
		store = storePath
	}
	if _, err := os.Stat(store); err != nil {
		return fmt.Errorf("%w: run make demo first (it imports Seal-Tools and builds features)", err)
	}
	st, err := embedded.Open(store, featurestore.Config{TextDim: enc.Dim()})
	if err != nil {
		return err
	}
	defer st.Close()
	// Texts encoded once (by the features stage or an earlier run) are
	// read back from the store's embedding cache.
	enc = textembed.Cached(enc, st)

	stages, err := featuresIfMissing(ctx, st, enc)
	if err != nil {
		return err
	}
	trainer, err := train.NewStage(train.StageConfig{
		Train:           train.DefaultConfig(),
		Encoder:         enc,
		RegisteredModel: model,
		Source: train.Source{
			PseudoPrefix:    featurestore.SealToolsDevPrefix, // the store has queries, not logged experiences
			CandidateLevels: []int{0},                        // rank the leaf capabilities
			Rewards:         train.DefaultRewards(),
		},
		ReportPrefix: featurestore.SealToolsTestPrefix,
	})
	if err != nil {
		return err
	}
	// Runner.Run keeps only the stages' published values; keep the summary.
	var sum *train.Summary
	stages = append(stages, pipeline.StageFunc(train.StageName, func(ctx context.Context, env *pipeline.Env) error {
		s, err := trainer.Train(ctx, env)
		sum = s
		return err
	}))

	c, err := mlflowclient.New() // MLFLOW_TRACKING_URI and friends
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := &pipeline.Runner{Client: c, Experiment: "capflow-demo", RunName: "train-example", Store: st,
		Logger: logger, Progress: pipeline.AutoProgress(os.Stderr, logger)}
	res, err := r.Run(ctx, stages...)
	if err != nil {
		return err
	}

	b := sum.Best
	fmt.Printf("trained %d steps in %.0fs on %d transitions; best validation epoch %d: MRR %.4f nDCG@5 %.4f Hit@1 %.4f\n",
		sum.Steps, sum.Seconds, sum.Train, b.Epoch, b.MRR, b.NDCG5, b.Hit1)
	for _, name := range []string{"trained", "untrained", "cosine"} {
		v := sum.Report[name]
		fmt.Printf("test_in_domain %-9s MRR %.4f nDCG@5 %.4f Hit@1 %.4f Hit@5 %.4f\n", name, v.MRR, v.NDCG5, v.Hit1, v.Hit5)
	}
	fmt.Printf("model %s (Staging), run %s/#/experiments/%s/runs/%s\n",
		sum.ModelURI, c.TrackingURI(), res.ExperimentID, res.Stages[len(res.Stages)-1].RunID)
	return nil
}

// featuresIfMissing returns the features stage when some capability has no
// feature row yet, and refuses an empty store.
func featuresIfMissing(ctx context.Context, st featurestore.Store, enc textembed.Encoder) ([]pipeline.Stage, error) {
	caps, err := st.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	if len(caps) == 0 {
		return nil, errors.New("the store has no capabilities: run make demo first")
	}
	ids := make([]string, len(caps))
	for i, c := range caps {
		ids[i] = c.ID
	}
	_, err = st.CapabilityFeatures(ctx, ids)
	if err == nil {
		return nil, nil
	}
	if !featurestore.IsNotFound(err) {
		return nil, err
	}
	s, err := features.NewStage(features.DefaultConfig(enc))
	if err != nil {
		return nil, err
	}
	return []pipeline.Stage{s}, nil
}
