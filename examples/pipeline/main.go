// Command pipeline runs capflow's whole offline pipeline from Go, built from
// the stage plugins: features → train → evaluate (which promotes to
// Production when the gate says improved), under one MLflow parent run with
// a nested run per stage.
//
//	make deps services-up
//	eval "$(bash scripts/services.sh env)"
//	go run ./examples/pipeline -store /tmp/capflow-pipeline.db
//
// It imports Seal-Tools into a fresh embedded store when the store is empty,
// encodes with all-MiniLM-L6-v2 when `make deps` converted it (else the
// offline hashing encoder), trains on the dev queries, gates on the dev
// queries training held out and only reports test_in_domain.
// examples/customstage shows how to add a stage of your own.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/capflow/capflow/evaluation"
	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/features"
	"github.com/capflow/capflow/pipeline/train"
)

const miniLM = ".local/models/all-MiniLM-L6-v2"

func main() {
	storePath := flag.String("store", filepath.Join(os.TempDir(), "capflow-pipeline.db"), "embedded store (created and filled with Seal-Tools when empty)")
	seal := flag.String("sealtools", "../shared/datasets/seal-tools", "Seal-Tools dataset folder")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *storePath, *seal, nil); err != nil {
		log.Fatal(err)
	}
}

// run builds and runs the pipeline; extra stages run between train and
// evaluate (examples/customstage passes one).
func run(ctx context.Context, storePath, seal string, extra []pipeline.Stage) error {
	enc, closeEnc, err := encoder(ctx)
	if err != nil {
		return err
	}
	defer closeEnc()
	cfg := featurestore.Config{TextDim: enc.Dim()}.WithDefaults()
	st, err := embedded.Open(storePath, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	queries, err := st.Queries(ctx)
	if err != nil {
		return err
	}
	if len(queries) == 0 {
		d, err := featurestore.ReadSealTools(ctx, seal, cfg)
		if err != nil {
			return err
		}
		if err := st.WriteDataset(ctx, d); err != nil {
			return err
		}
		queries = d.Queries
	}
	var test, dev []featurestore.Query
	for _, q := range queries {
		switch {
		case strings.HasPrefix(q.ID, featurestore.SealToolsTestPrefix):
			test = append(test, q)
		case strings.HasPrefix(q.ID, featurestore.SealToolsDevPrefix):
			dev = append(dev, q)
		}
	}

	fcfg := features.DefaultConfig(enc)
	fcfg.Store = cfg
	featuresStage, err := features.NewStage(fcfg)
	if err != nil {
		return err
	}
	src := train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, Rewards: train.DefaultRewards()}
	trainStage, err := train.NewStage(train.StageConfig{Train: train.DefaultConfig(), Encoder: textembed.Cached(enc, st), Source: src})
	if err != nil {
		return err
	}
	// The gate decides on the dev queries training held out (the same split
	// as src); test_in_domain is only reported, never selected on.
	holdout, err := train.HeldOutQueries(dev, src)
	if err != nil {
		return err
	}
	evaluateStage, err := evaluation.NewStage(evaluation.StageConfig{
		Against: "Production", Queries: holdout, Source: "Seal-Tools dev, held out by training",
		Report: test, ReportSource: "Seal-Tools test_in_domain",
		Levels: []int{0}, Encoder: enc, PromoteTo: string(mlflowclient.StageProduction),
	})
	if err != nil {
		return err
	}

	client, err := mlflowclient.New() // MLFLOW_TRACKING_URI
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := &pipeline.Runner{Client: client, Experiment: "capflow-pipeline", Store: st, Logger: logger,
		Progress: pipeline.AutoProgress(os.Stderr, logger)}
	stages := append([]pipeline.Stage{featuresStage, trainStage}, extra...)
	res, err := r.Run(ctx, append(stages, evaluateStage)...)
	if err != nil {
		return err
	}
	fmt.Printf("model %s, improved=%s\n", res.Values[train.ValueModelURI], res.Values[evaluation.ValueImproved])
	for _, s := range res.Stages {
		fmt.Printf("  stage %-9s run %s  %.1fs\n", s.Name, s.RunID, s.Duration.Seconds())
	}
	fmt.Printf("MLflow: %s/#/experiments/%s/runs/%s\n", client.TrackingURI(), res.ExperimentID, res.ParentRunID)
	return nil
}

// encoder is MiniLM through ONNX Runtime when converted, else hashing.
func encoder(ctx context.Context) (textembed.Encoder, func(), error) {
	if _, err := os.Stat(filepath.Join(miniLM, "model.onnx")); err == nil {
		e, err := textembed.OpenONNX(ctx, miniLM, textembed.ONNXOptions{})
		if err != nil {
			return nil, nil, err
		}
		return e, func() { e.Close() }, nil
	}
	fmt.Fprintf(os.Stderr, "%s not found (run make deps): using the hashing encoder\n", miniLM)
	h, err := textembed.NewHashing(textembed.HashingConfig{Dim: 384})
	return h, func() {}, err
}
