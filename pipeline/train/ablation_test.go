package train_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/pipeline"
	"github.com/capflow/capflow/pipeline/train"
)

// TestAblateSealTools trains two variants on Seal-Tools dev (a few steps)
// under one MLflow parent run and checks the rows, the child runs (one per
// variant, the same metric keys, tagged), the table artifact and that
// nothing was registered.
func TestAblateSealTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, _, enc, fstage := testmodel.SealTools(t, ctx, 64)
	c := testenv.Client(t)
	r := &pipeline.Runner{Client: c, Experiment: testenv.Name(t, "ablation"), Store: st, Progress: pipeline.NoProgress}
	_, err := r.Run(ctx, fstage)
	require.NoError(t, err)

	tcfg := train.DefaultConfig()
	tcfg.Epochs, tcfg.StepsPerEpoch, tcfg.BatchSize, tcfg.FusionSteps = 1, 2, 8, 20
	base := train.StageConfig{
		Train: tcfg, Encoder: enc, RegisteredModel: testenv.Name(t, "shgat"), ReportPrefix: featurestore.SealToolsTestPrefix,
		Source: train.Source{PseudoPrefix: featurestore.SealToolsDevPrefix, CandidateLevels: []int{0}, Rewards: train.DefaultRewards()},
	}
	vs := train.AblationVariants()
	var ce *train.ConfigError
	_, _, err = train.Ablate(ctx, r, base, vs[1:])
	require.True(t, errors.As(err, &ce), "variants without the full model first: %v", err)
	noReport := base
	noReport.ReportPrefix = ""
	_, _, err = train.Ablate(ctx, r, noReport, vs)
	require.True(t, errors.As(err, &ce), "no report queries: %v", err)

	ab, res, err := train.Ablate(ctx, r, base, []train.Variant{vs[0], {Name: "whole-intent", About: "no parts",
		Configure: func(c *train.StageConfig) { c.Train.Model.Evidence = train.WholeIntentEvidence }}})
	require.NoError(t, err)
	var names []string
	for _, row := range ab.Rows {
		names = append(names, row.Variant)
		assert.Equal(t, 700, row.Report.Queries, row.Variant)
		assert.Len(t, row.Report.PerQuery, 700, row.Variant)
		assert.NotEmpty(t, row.RunID, row.Variant)
	}
	assert.Equal(t, []string{"full", "evidence", "bm25", "cosine", "whole-intent"}, names)
	bm25, _ := ab.Row("bm25")
	assert.InDelta(t, 0.7502, bm25.Report.NDCG5, 0.0005, "BM25 on test_in_domain, level 0 (README)")
	d, ok := ab.Paired("full", "evidence")
	require.True(t, ok)
	assert.Equal(t, 700, d.Queries)
	assert.True(t, d.Low <= d.Mean && d.Mean <= d.High)
	md := ab.Markdown()
	for _, s := range []string{"| full |", "| whole-intent |", "full − evidence"} {
		assert.Contains(t, md, s)
	}

	// MLflow: the parent run, one child run per variant with the same
	// metric keys and the variant tag, the table on the last child.
	require.NotEmpty(t, res.ParentRunID)
	children := map[string]string{}
	for _, s := range res.Stages {
		children[s.Name] = s.RunID
	}
	for _, v := range names {
		id, ok := children["ablation-"+v]
		require.True(t, ok, "child run of %s", v)
		run, err := c.Runs.Get(ctx, id)
		require.NoError(t, err)
		tags := map[string]string{}
		for _, tg := range run.Data.Tags {
			tags[tg.Key] = tg.Value
		}
		assert.Equal(t, v, tags["capflow.ablation.variant"])
		assert.Equal(t, res.ParentRunID, tags["mlflow.parentRunId"])
		keys := map[string]float64{}
		for _, m := range run.Data.Metrics {
			keys[m.Key] = m.Value
		}
		row, _ := ab.Row(v)
		assert.InDelta(t, row.Report.NDCG5, keys["ndcg_at_5"], 1e-9, v)
		assert.Contains(t, keys, "comp_at_5", v)
	}
	table, err := c.Runs.Get(ctx, children["ablation-table"])
	require.NoError(t, err)
	local, err := c.Artifacts.Download(ctx, table.Info.ArtifactURI, "ablation.md", t.TempDir())
	require.NoError(t, err)
	body, err := os.ReadFile(local)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(body), "Ablation on the 700"), string(body))
	_, err = c.Registry.GetModel(ctx, base.RegisteredModel)
	assert.True(t, mlflowclient.IsNotFound(err), "an ablation registers nothing: %v", err)
}
