package evaluation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/evaluation"
	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// TestStageGatesAndPromotes runs features → train → evaluate on Seal-Tools
// under real MLflow runs: Production holds a model an older capflow
// packaged (scorer contract 1), which cannot be a reference, so the new
// model must only beat cosine and BM25 to be promoted. The gate decides on
// the dev queries training held out; test_in_domain is only reported. The
// evaluation is logged with its report and plots, the version lands in
// Production only when the gate said improved, and deciding on dev queries
// the model was trained on is refused.
func TestStageGatesAndPromotes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, d, enc, fstage := testmodel.SealTools(t, ctx, 64)
	tcfg := train.DefaultConfig()
	tcfg.Epochs, tcfg.StepsPerEpoch, tcfg.BatchSize, tcfg.FusionSteps = 1, 3, 16, 50
	name := testenv.Name(t, "shgat")
	tstage, err := train.NewStage(train.StageConfig{Train: tcfg, Encoder: enc, RegisteredModel: name,
		Source: train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, SplitSeed: 1, Rewards: train.DefaultRewards()}})
	require.NoError(t, err)
	var test, dev []featurestore.Query
	for _, q := range d.Queries {
		if strings.HasPrefix(q.ID, featurestore.SealToolsTestPrefix) && len(test) < 150 {
			test = append(test, q)
		}
		if strings.HasPrefix(q.ID, featurestore.SealToolsDevPrefix) {
			dev = append(dev, q)
		}
	}
	held, err := train.HeldOutQueries(dev, train.Source{SplitSeed: 1})
	require.NoError(t, err)
	held = held[:min(len(held), 150)]
	estage, err := evaluation.NewStage(evaluation.StageConfig{Against: "Production", Queries: held, Source: "dev hold-out",
		Report: test, ReportSource: "test_in_domain (150)", Levels: []int{0}, Encoder: enc, PromoteTo: "Production"})
	require.NoError(t, err)

	c := testenv.Client(t)
	old := testmodel.Package(t, testmodel.PackageOptions{Dim: 8, Seed: 1, Contract: 1})
	require.Equal(t, "1", testmodel.Register(t, ctx, c, name, old.Dir))
	_, err = mlmodel.Promote(ctx, c, name, "1", mlflowclient.StageProduction)
	require.NoError(t, err)
	r := &pipeline.Runner{Client: c, Experiment: testenv.Name(t, "evaluate"), Store: st, Progress: pipeline.NoProgress}
	res, err := r.Run(ctx, fstage, tstage, estage)
	require.NoError(t, err)
	improved := res.Values[evaluation.ValueImproved]
	require.Contains(t, []string{"true", "false"}, improved)

	run, err := c.Runs.Get(ctx, res.Stages[2].RunID)
	require.NoError(t, err)
	latest := map[string]float64{}
	for _, m := range run.Data.Metrics {
		latest[m.Key] = m.Value
	}
	for _, k := range []string{"candidate_mrr", "cosine_mrr", "bm25_ndcg_at_5", "candidate_ece", "candidate_brier", "candidate_gini_at_10", "improved",
		"report_candidate_mrr", "report_bm25_mrr", "report_cosine_ndcg_at_5"} {
		assert.Contains(t, latest, k)
	}
	files, err := c.Artifacts.List(ctx, run.Info.ArtifactURI, "plots")
	require.NoError(t, err)
	assert.Len(t, files, 3)
	v, err := c.Registry.GetVersion(ctx, name, "2")
	require.NoError(t, err)
	if improved == "true" {
		assert.Equal(t, mlflowclient.StageProduction, v.CurrentStage)
	} else {
		assert.Equal(t, mlflowclient.StageStaging, v.CurrentStage, "not improved: not promoted")
	}
	t.Logf("improved=%s candidate mrr %.3f cosine %.3f bm25 %.3f (dev hold-out); reported on test_in_domain: %.3f %.3f %.3f", improved,
		latest["candidate_mrr"], latest["cosine_mrr"], latest["bm25_mrr"], latest["report_candidate_mrr"], latest["report_cosine_mrr"], latest["report_bm25_mrr"])

	// Deciding on every dev query includes the model's training queries,
	// which its run records: refused before anything is ranked.
	leaky, err := evaluation.NewStage(evaluation.StageConfig{Model: "models:/" + name + "/2", Queries: dev, Source: "dev",
		Levels: []int{0}, Encoder: enc})
	require.NoError(t, err)
	_, err = r.Run(ctx, leaky)
	var ce *evaluation.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "queries", ce.Field)
	assert.Contains(t, ce.Reason, "training queries of the candidate")
}
