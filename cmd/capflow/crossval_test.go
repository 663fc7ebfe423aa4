package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/train"
)

// cvStore is testmodel's synthetic team logs in an embedded store with
// capability text embeddings from the 64-d hashing encoder, which
// `--encoder hashing --text-dim 64` reproduces.
func cvStore(t *testing.T) (path string, d *featurestore.Dataset) {
	t.Helper()
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)
	st, path, d := testmodel.LogStore(t, context.Background(), enc, testmodel.LogsOptions{Seed: 1})
	require.NoError(t, st.Close()) // the command opens it
	return path, d
}

// A few training steps per fold: the command's plumbing, not the quality.
var cvQuick = []string{"--encoder", "hashing", "--text-dim", "64", "--no-progress",
	"--epochs", "2", "--steps-per-epoch", "4", "--batch-size", "16", "--fusion-steps", "30"}

// TestEvaluateCrossValidation runs `capflow evaluate --cv 3` on logged
// sessions: the table has every system's mean ± sd of every metric, a line
// per fold and the paired differences; --json has the same numbers.
func TestEvaluateCrossValidation(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	path, _ := cvStore(t)
	args := append([]string{"evaluate", "--cv", "3", "--cv-seed", "4", "--store-path", path, "--no-tracking"}, cvQuick...)
	out, err := capflow(t, args...)
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Regexp(t, `(?m)^cross-validation on the logged experiences of embedded \S+ \(encoder capflow-hashing, \d+\.\ds\)$`, out)
	assert.Regexp(t, `(?m)^3-fold cross-validation grouped by session \(fold seed 4\): 160 sessions tested once each; mean ± sd across folds\.$`, out)
	for _, s := range train.CVSystems {
		assert.Regexp(t, `(?m)^\| `+s+` \|( \d\.\d{4} ± \d\.\d{4} \|){6}$`, out)
	}
	assert.Regexp(t, `(?m)^trained − evidence, nDCG@5 paired over 160 sessions: [+-]\d\.\d{4}, 95% CI \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\]$`, out)
	assert.Len(t, regexp.MustCompile(`(?m)^\| [123] \| 5[34] \| \d+ \| \d+ \| \d+ \| `).FindAllString(out, -1), 3, "one row per fold, 160 sessions in 3")

	js, err := capflow(t, append(args, "--json")...)
	require.NoError(t, err)
	var got struct {
		K       int
		Folds   []struct{ Sessions []string }
		Metrics map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(js), &got))
	assert.Equal(t, 3, got.K)
	var all []string
	for _, f := range got.Folds {
		all = append(all, f.Sessions...)
	}
	slices.Sort(all)
	assert.Len(t, slices.Compact(all), 160, "every session tested once")
	m := regexp.MustCompile(`(?m)^\| trained \| (\d\.\d{4}) ± `).FindStringSubmatch(out)
	require.Len(t, m, 2)
	assert.Equal(t, m[1], fmt.Sprintf("%.4f", got.Metrics["cv_trained_mrr_mean"]), "the same run twice, the same numbers")
}

// TestEvaluateCrossValidationBadInput: each mistake is refused naming its
// flag or saying what to run, with the typed error kept in the chain.
func TestEvaluateCrossValidationBadInput(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	missing := filepath.Join(t.TempDir(), "never", "created.db")
	var ce *train.ConfigError
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cv", "1"}, "evaluate: --cv: train: config cv: 1 folds: want at least 2"},
		{[]string{"--cv", "0"}, "evaluate: --cv: train: config cv: 0 folds"},
		{[]string{"--cv", "3", "--query-prefix", "dev-"}, "evaluate: --query-prefix does not apply with --cv"},
		{[]string{"--cv", "3", "--model", "bm25"}, "evaluate: --model does not apply with --cv"},
		{[]string{"--query-prefix", "dev-", "--epochs", "3"}, "evaluate: --epochs applies only with --cv"},
		{[]string{"--query-prefix", "dev-", "--cv-seed", "3"}, "evaluate: --cv-seed applies only with --cv"},
		{[]string{"--cv", "3", "--valid-fraction", "0"}, "evaluate: --valid-fraction must be in (0,1)"},
		{[]string{"--cv", "3", "--dropout", "1"}, "--dropout must be in [0,1)"},
	} {
		_, err := capflow(t, append([]string{"evaluate", "--store-path", missing, "--no-tracking"}, tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
		if tc.args[1] == "1" || tc.args[1] == "0" {
			assert.ErrorAs(t, err, &ce)
		}
	}

	// The environment serves every command: a training setting there is
	// not refused when evaluate runs without --cv.
	t.Setenv("CAPFLOW_EPOCHS", "3")
	_, err := capflow(t, "evaluate", "--store-path", missing, "--no-tracking")
	assert.ErrorContains(t, err, "give exactly one of --queries and --query-prefix")
	os.Unsetenv("CAPFLOW_EPOCHS")

	path, d := cvStore(t)
	_, err = capflow(t, append([]string{"evaluate", "--cv", "161", "--store-path", path, "--no-tracking"}, cvQuick...)...)
	assert.ErrorContains(t, err, "evaluate: --cv: pipeline: stage cross-validation: train: config cv: 161 folds of 160 sessions with a success: want 2 ≤ K ≤ 160")
	if assert.ErrorAs(t, err, &ce) {
		assert.Equal(t, "cv", ce.Field)
	}

	ctx := context.Background()
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: 64})
	require.NoError(t, err)
	open := func(name string) (featurestore.Store, string) {
		p := filepath.Join(t.TempDir(), name)
		st, err := embedded.Open(p, featurestore.Config{TextDim: 64})
		require.NoError(t, err)
		return st, p
	}
	bare, barePath := open("bare.db") // logged sessions, no features
	require.NoError(t, bare.WriteDataset(ctx, d))
	require.NoError(t, bare.Close())
	_, err = capflow(t, append([]string{"evaluate", "--cv", "3", "--store-path", barePath, "--no-tracking"}, cvQuick...)...)
	assert.ErrorContains(t, err, "have no features: run `capflow features build` first, with the same encoder")
	assert.ErrorIs(t, err, train.ErrNoFeatures)

	empty, emptyPath := open("empty.db") // a catalog with features, nothing logged
	require.NoError(t, empty.WriteDataset(ctx, &featurestore.Dataset{Tools: d.Tools, Capabilities: d.Capabilities}))
	testmodel.WriteCapabilityText(t, ctx, empty, enc, d)
	require.NoError(t, empty.Close())
	_, err = capflow(t, append([]string{"evaluate", "--cv", "3", "--store-path", emptyPath, "--no-tracking"}, cvQuick...)...)
	assert.ErrorContains(t, err, "has no logged experiences to cross-validate (--store-path or --database-url names the store that logs them)")
	assert.True(t, errors.Is(err, train.ErrNoExperiences), "%v", err)
}

// TestEvaluateCrossValidationTracked: one pipeline run, whose
// cross-validation run holds cv_<system>_<metric>_mean/_sd, the per-fold
// metrics at steps 0..K−1 and the table as cv/cv.md; the parent run has the
// summary too.
func TestEvaluateCrossValidationTracked(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	c := testenv.Client(t)
	uri := testenv.MLflowURI(t)
	experiment := testenv.Name(t, "cli-cv")
	t.Cleanup(func() {
		if e, err := c.Experiments.GetByName(context.Background(), experiment); err == nil {
			_ = c.Experiments.Delete(context.Background(), e.ID)
		}
	})
	path, _ := cvStore(t)
	out, err := capflow(t, append([]string{"evaluate", "--cv", "3", "--store-path", path, "--tracking-uri", uri, "--experiment", experiment}, cvQuick...)...)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^MLflow run ([0-9a-f]{32}) \(cross-validation run ([0-9a-f]{32})\) in experiment \d+$`).FindStringSubmatch(out)
	require.Len(t, m, 3, out)
	ctx := context.Background()
	parent, err := c.Runs.Get(ctx, m[1])
	require.NoError(t, err)
	assert.Equal(t, "evaluate-cv", parent.Info.RunName)
	onParent := map[string]float64{}
	for _, x := range parent.Data.Metrics {
		onParent[x.Key] = x.Value
	}
	run, err := c.Runs.Get(ctx, m[2])
	require.NoError(t, err)
	latest := map[string]float64{}
	for _, x := range run.Data.Metrics {
		latest[x.Key] = x.Value
	}
	for _, s := range train.CVSystems {
		for _, k := range train.CVMetrics {
			for _, key := range []string{"cv_" + s + "_" + k + "_mean", "cv_" + s + "_" + k + "_sd"} {
				assert.Contains(t, latest, key)
				assert.Equal(t, latest[key], onParent[key], "%s: the summary is on the parent run too", key)
			}
		}
	}
	assert.Contains(t, latest, "cv_trained_minus_evidence_ndcg_at_5_ci_low")
	var steps []int64
	for x, err := range c.Runs.AllMetricHistory(ctx, m[2], "fold_trained_mrr", 100) {
		require.NoError(t, err)
		steps = append(steps, x.Step)
	}
	slices.Sort(steps)
	assert.Equal(t, []int64{0, 1, 2}, steps, "one point per fold")
	files, err := c.Artifacts.List(ctx, run.Info.ArtifactURI, "cv")
	require.NoError(t, err)
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	assert.ElementsMatch(t, []string{"cv/cv.md", "cv/cv.json"}, paths)
	params := map[string]string{}
	for _, p := range run.Data.Params {
		params[p.Key] = p.Value
	}
	assert.Equal(t, "3", params["cv.k"])
	assert.Equal(t, "2", params["epochs"])
}
