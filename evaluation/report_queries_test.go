package evaluation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/evaluation"
	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testmodel"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline"
)

// Report queries are ranked by every ranker and reported separately, with
// the temperature fitted on the decision queries (nothing is fitted on
// them); a report query that also decides or calibrates is refused.
func TestStageReportQueries(t *testing.T) {
	ctx := context.Background()
	st := testmodel.Store(t, filepath.Join(t.TempDir(), "s.db"), testmodel.StoreOptions{Dim: 16})
	enc, err := textembed.NewHashing(textembed.HashingConfig{Dim: 16})
	require.NoError(t, err)
	// Capability text embeddings from their names, so that cosine favours
	// the relevant capability as BM25 does.
	var ids, names []string
	_, caps := testmodel.Catalog()
	for _, c := range caps {
		ids, names = append(ids, c.ID), append(names, c.Name)
	}
	rows, err := st.CapabilityFeatures(ctx, ids)
	require.NoError(t, err)
	vecs, err := enc.Encode(ctx, names)
	require.NoError(t, err)
	byID := map[string][]float32{}
	for i, id := range ids {
		byID[id] = vecs[i]
	}
	for i := range rows {
		rows[i].TextEmbedding = byID[rows[i].CapabilityID]
	}
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, rows))
	words := []string{"weather", "hotel", "flight", "currency", "stock", "news", "recipe", "music"}
	query := func(prefix string, i int) featurestore.Query {
		// The relevant capability is named by one word of two, so that BM25
		// ranks some queries well and some badly: a temperature has an optimum.
		return featurestore.Query{ID: fmt.Sprintf("%s%d", prefix, i), Intent: words[i%8] + " " + words[(i+3)%8] + " data for a place",
			Relevant: []string{fmt.Sprintf("cap%d", (i+i/8)%8)}}
	}
	var decide, report []featurestore.Query
	for i := range 24 {
		decide = append(decide, query("dev-", i))
		report = append(report, query("test-", i+5))
	}
	stage, err := evaluation.NewStage(evaluation.StageConfig{Model: evaluation.ModelBM25, Queries: decide, Source: "dev",
		Report: report, ReportSource: "test", Encoder: enc})
	require.NoError(t, err)
	var ev *evaluation.Evaluation
	r := &pipeline.Runner{Store: st, Progress: pipeline.NoProgress}
	_, err = r.Run(ctx, pipeline.StageFunc(stage.Name(), func(ctx context.Context, env *pipeline.Env) error {
		ev, err = stage.Evaluate(ctx, env)
		return err
	}))
	require.NoError(t, err)
	require.Len(t, ev.Reported, len(ev.Results))
	assert.Equal(t, 24, ev.ReportQueries)
	for i, rep := range ev.Reported {
		res := ev.Results[i]
		assert.Equal(t, res.Name, rep.Name)
		assert.Equal(t, res.Report.Temperature, rep.Report.Temperature, "%s: the report takes the decision queries' temperature", rep.Name)
		assert.Len(t, rep.Rankings, 24)
		assert.True(t, strings.HasPrefix(rep.Rankings[0].QueryID, "test-"), "%s: report rankings are the report queries", rep.Name)
		assert.True(t, strings.HasPrefix(res.Rankings[0].QueryID, "dev-"))
	}
	md := ev.Markdown()
	assert.Contains(t, md, "## Reported only: 24 queries from test")
	assert.Contains(t, string(ev.JSON()), `"reported"`)

	for _, cfg := range []evaluation.StageConfig{
		{Queries: decide, Report: append(report[:3:3], decide[5]), Encoder: enc},
		{Queries: decide, Calibration: report[:4], Report: report, Encoder: enc},
	} {
		_, err := evaluation.NewStage(cfg)
		var ce *evaluation.ConfigError
		if assert.True(t, errors.As(err, &ce), "%v", err) {
			assert.Equal(t, "report", ce.Field)
		}
	}
}
