package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/shgat"
)

// TestSHGATPackageInterop takes a SHGAT model through the whole artifact
// path: message passing on a small catalog → catalog + MLflow Model folder
// (shgat.WriteMLflowModel) → logged model → registered version → Staging.
// Python's mlflow.pyfunc loads models:/<name>/Staging and predicts on the
// input example; the scores equal Go's within 1e-5. Go downloads the same
// version by alias and by stage and reads it back as a SHGAT package.
func TestSHGATPackageInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	mlmCheckPython(t, ctx)
	c := testenv.Client(t)

	var tools []featurestore.Tool
	for i := range 12 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("tool-%d", i)})
	}
	var caps []featurestore.Capability
	for j := range 6 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("cap-%d", j), Members: []string{tools[2*j].ID, tools[2*j+1].ID}})
	}
	caps = append(caps, featurestore.Capability{ID: "domain", Members: []string{"cap-0", "cap-1", "cap-2"}})
	g, err := shgat.NewGraph(tools, caps)
	require.NoError(t, err)
	m, err := shgat.New(shgat.Config{Dim: 16, Seed: 5, InitNoise: 0.3}, g.Levels())
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	feats := shgat.Features{Tools: make([]float64, len(tools)*16), Caps: make([]float64, len(caps)*16)}
	for _, v := range [][]float64{feats.Tools, feats.Caps} {
		for i := range v {
			v[i] = rng.NormFloat64() / 4
		}
	}
	reps, err := m.Represent(g, feats)
	require.NoError(t, err)
	half, high := 0.3, 0.95
	rel := m.ReliabilityFactors([]*float64{&half, nil, &high, nil, nil, nil, nil})
	cat, err := shgat.NewCatalog(g, reps, rel, "fv-interop")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "shgat")
	require.NoError(t, shgat.WriteMLflowModel(dir, m, cat, shgat.PackageOptions{
		Metadata: map[string]string{mlmodel.MetaGitCommit: "0123abcd", mlmodel.MetaDatasetDigest: "d1g3st"},
		Metrics:  map[string]float64{"valid_mrr": 0.42},
	}))
	p, err := shgat.ReadMLflowModel(dir)
	require.NoError(t, err)

	exp, err := c.Experiments.GetOrCreate(ctx, testenv.Name(t, "shgat-interop"))
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: "shgat-interop"})
	require.NoError(t, err)
	lm, err := mlmodel.Log(ctx, c, run.Info.RunID, dir, mlmodel.LogOptions{})
	require.NoError(t, err)
	name := testenv.Name(t, "capflow-shgat")
	mv, err := mlmodel.Register(ctx, c, mlmodel.RegisterOptions{Name: name, ModelID: lm.ID(), RunID: run.Info.RunID, Tags: mlmodel.VersionTags(p.Folder)})
	require.NoError(t, err)
	require.Equal(t, "models:/"+lm.ID(), mv.Source) // MLflow 3 model ids are "m-…"
	require.Contains(t, mv.Tags, mlflowclient.Tag{Key: mlmodel.TagFeatureVersion, Value: "fv-interop"})
	require.Contains(t, mv.Tags, mlflowclient.Tag{Key: mlmodel.TagGitCommit, Value: "0123abcd"})
	_, err = mlmodel.Promote(ctx, c, name, mv.Version, mlflowclient.StageStaging)
	require.NoError(t, err)

	var out map[string][][]float64
	require.NoError(t, json.Unmarshal([]byte(mlmPython(t, ctx, mlmPyPredict, "models:/"+name+"/Staging")), &out))
	want := make([]float64, len(p.ExampleScores))
	for i, v := range p.ExampleScores {
		want[i] = float64(v)
	}
	mlmAssertScores(t, [][]float64{want}, out[shgat.OutputScores])

	require.NoError(t, c.Registry.SetAlias(ctx, name, "candidate", mv.Version))
	for _, uri := range []string{"models:/" + name + "@candidate", "models:/" + name + "/Staging"} {
		f, err := mlmodel.Download(ctx, c, uri, filepath.Join(t.TempDir(), "dl"))
		require.NoError(t, err, uri)
		got, err := shgat.ReadMLflowModel(f.Dir)
		require.NoError(t, err, uri)
		require.Equal(t, p.ExampleScores, got.ExampleScores, uri)
		require.Equal(t, cat.CapabilityIDs, got.Catalog.CapabilityIDs, uri)
	}
}
