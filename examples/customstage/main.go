// Command customstage adds a stage of your own to capflow's pipeline. A stage
// is anything with Name() and Run(ctx, *pipeline.Env): the Runner gives it a
// nested MLflow run (env.Tracker), the feature store, a logger and values
// earlier stages set, and ends its run FINISHED or FAILED.
//
//	make demo        # once: fills .local/demo/store-minilm.db with Seal-Tools and features
//	eval "$(bash scripts/services.sh env)"
//	go run ./examples/customstage
//
// Here a catalog-health stage runs before training: it logs catalog metrics
// and fails the pipeline (so nothing is trained) when capabilities lack
// features.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// catalogHealth is a custom stage.
type catalogHealth struct{ maxMissing int }

func (catalogHealth) Name() string { return "catalog-health" }

func (c catalogHealth) Run(ctx context.Context, env *pipeline.Env) error {
	caps, err := env.Store.Capabilities(ctx)
	if err != nil {
		return err
	}
	tools, err := env.Store.Tools(ctx)
	if err != nil {
		return err
	}
	perLevel := map[int]int{}
	missing := 0
	for _, cp := range caps {
		perLevel[cp.Level]++
		if _, err := env.Store.CapabilityFeatures(ctx, []string{cp.ID}); err != nil {
			missing++
		}
	}
	m := map[string]float64{"tools": float64(len(tools)), "capabilities": float64(len(caps)), "missing_features": float64(missing)}
	for l, n := range perLevel {
		m[fmt.Sprintf("capabilities_level_%d", l)] = float64(n)
	}
	if err := env.Tracker.LogMetrics(ctx, 0, m); err != nil {
		return err
	}
	env.Set("catalog_capabilities", fmt.Sprint(len(caps))) // later stages (and the parent run's tags) see it
	if missing > c.maxMissing {
		return fmt.Errorf("catalog-health: %d capabilities have no features (build features first)", missing)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, err := embedded.Open(".local/demo/store-minilm.db", featurestore.Config{TextDim: 384})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	enc, err := textembed.OpenONNX(ctx, ".local/models/all-MiniLM-L6-v2", textembed.ONNXOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer enc.Close()

	cfg := train.DefaultConfig()
	cfg.Epochs = 2 // a short run: this example is about the stage
	trainStage, err := train.NewStage(train.StageConfig{Train: cfg, Encoder: textembed.Cached(enc, st), Stage: "None",
		Source: train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, Rewards: train.DefaultRewards()}})
	if err != nil {
		log.Fatal(err)
	}
	client, err := mlflowclient.New()
	if err != nil {
		log.Fatal(err)
	}
	r := &pipeline.Runner{Client: client, Experiment: "capflow-customstage", Store: st}
	// A StageFunc is the lightest plugin: a name and a function.
	hello := pipeline.StageFunc("hello", func(ctx context.Context, env *pipeline.Env) error {
		env.Logger.Info("hello from a function stage", "capabilities", must(env.Value("catalog_capabilities")))
		return nil
	})
	res, err := r.Run(ctx, catalogHealth{maxMissing: 0}, hello, trainStage)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Stages {
		fmt.Printf("stage %-15s run %s %.1fs\n", s.Name, s.RunID, s.Duration.Seconds())
	}
}

func must(v string, _ bool) string { return v }
