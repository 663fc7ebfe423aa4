package train_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// TestStageSealTools runs features → train on the Seal-Tools catalog (dev
// queries as pseudo-experiences, a report on test_in_domain) under a real
// MLflow run, and checks what landed in MLflow: params, step-indexed
// metrics, artifacts, a logged model, a registered version in Staging that
// reads back as a SHGAT package.
func TestStageSealTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, d, enc, fstage := testmodel.SealTools(t, ctx, 64)

	tcfg := train.DefaultConfig()
	tcfg.Epochs, tcfg.StepsPerEpoch, tcfg.BatchSize, tcfg.FusionSteps = 2, 3, 16, 30
	name := testenv.Name(t, "shgat")
	tstage, err := train.NewStage(train.StageConfig{
		Train: tcfg, Encoder: enc, RegisteredModel: name, ReportPrefix: featurestore.SealToolsTestPrefix,
		Source: train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, SplitSeed: 1, Rewards: train.DefaultRewards()},
	})
	require.NoError(t, err)

	c := testenv.Client(t)
	r := &pipeline.Runner{Client: c, Experiment: testenv.Name(t, "train"), Store: st, Progress: pipeline.NoProgress}
	res, err := r.Run(ctx, fstage, tstage)
	require.NoError(t, err)
	require.Len(t, res.Stages, 2)
	runID := res.Stages[1].RunID
	assert.Equal(t, "models:/"+name+"/1", res.Values[train.ValueModelURI])

	run, err := c.Runs.Get(ctx, runID)
	require.NoError(t, err)
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	assert.Equal(t, "16", params["batch_size"])
	assert.Equal(t, "0.6", params["replay.Alpha"])
	assert.Equal(t, "dev-", params[train.ParamPseudoPrefix])
	assert.Equal(t, train.SplitBySessionHash, params[train.ParamSplit])
	assert.Equal(t, "0.2", params[train.ParamValidFraction])
	assert.Equal(t, "1", params[train.ParamSplitSeed])
	assert.Equal(t, "6", params["replay.BetaCalls"], "β's horizon is the run's planned steps")
	var steps []int64
	for m, err := range c.Runs.AllMetricHistory(ctx, runID, "loss", 100) {
		require.NoError(t, err)
		steps = append(steps, m.Step)
	}
	slices.Sort(steps)
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, steps, "one loss point per step")
	latest := map[string]float64{}
	for _, m := range run.Data.Metrics {
		latest[m.Key] = m.Value
	}
	for _, k := range []string{"valid_mrr", "best_valid_mrr", "report_trained_ndcg_at_5", "report_untrained_mrr", "report_cosine_mrr", "beta", "lr"} {
		assert.Contains(t, latest, k)
	}
	assert.Equal(t, 1.0, latest["beta"], "β reaches 1 at the last step")
	files, err := c.Artifacts.List(ctx, run.Info.ArtifactURI, "")
	require.NoError(t, err)
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	for _, p := range []string{"checkpoint", "config", "plots"} {
		assert.True(t, slices.Contains(paths, p), "artifact %s in %v", p, paths)
	}

	// What Load trains on: the 700 dev queries as pseudo-sessions, whose
	// plans (1,804 calls) link 1,804 − 700 = 1,104 steps to a next one and
	// carry the earlier calls' tools as context (up to five).
	data, err := train.Load(ctx, train.Source{Store: st, Encoder: enc, PseudoPrefix: featurestore.SealToolsDevPrefix,
		CandidateLevels: []int{0}, SplitSeed: 1}, tcfg.Model)
	require.NoError(t, err)
	assert.Len(t, append(train.Sessions(data.Split.Train), train.Sessions(data.Split.Valid)...), 700)
	links, byContext := 0, map[int]int{}
	for _, s := range append(slices.Clone(data.Train), data.Valid...) {
		if s.Next >= 0 {
			links++
		}
		byContext[len(s.Context)]++
	}
	assert.Equal(t, 1104, links)
	assert.Equal(t, 500, data.Plans, "500 of the 700 dev queries make more than one call")
	assert.Positive(t, byContext[2])
	assert.Positive(t, byContext[5])

	f, err := mlmodel.Download(ctx, c, "models:/"+name+"/"+string(mlflowclient.StageStaging), filepath.Join(t.TempDir(), "dl"))
	require.NoError(t, err)
	p, err := shgat.ReadMLflowModel(f.Dir)
	require.NoError(t, err)
	assert.Len(t, p.Catalog.CapabilityIDs, len(d.Capabilities))
	assert.NotEmpty(t, p.Catalog.ToolText)
	assert.NotEmpty(t, f.Metadata[mlmodel.MetaDatasetDigest])
}

// The report prefix may not share queries with the training prefix: equal,
// or either one a prefix of the other, is a *ConfigError on report_prefix.
func TestStageRefusesAReportPrefixTrainedOn(t *testing.T) {
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: 8})
	require.NoError(t, err)
	stage := func(pseudo, report string) error {
		_, err := train.NewStage(train.StageConfig{Train: train.DefaultConfig(), Encoder: enc,
			Source: train.Source{PseudoPrefix: pseudo}, ReportPrefix: report})
		return err
	}
	for _, c := range [][2]string{{"dev-", "dev-"}, {"dev-", "dev-easy-"}, {"dev-easy-", "dev-"}, {"dev-", "d"}} {
		var ce *train.ConfigError
		err := stage(c[0], c[1])
		if assert.True(t, errors.As(err, &ce), "pseudo %q, report %q: %v", c[0], c[1], err) {
			assert.Equal(t, "report_prefix", ce.Field)
		}
	}
	for _, c := range [][2]string{{"dev-", "test_in_domain-"}, {"dev-", ""}, {"", "dev-"}, {"dev-", "devx-"}} {
		assert.NoError(t, stage(c[0], c[1]), "pseudo %q, report %q", c[0], c[1])
	}
}
