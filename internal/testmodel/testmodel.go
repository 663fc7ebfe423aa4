// Package testmodel builds small real models and catalogs for tests: a
// catalog of tools and capabilities, random unit text embeddings, a random
// (untrained) SHGAT model packaged as an MLflow Model folder, an embedded
// feature store holding the catalog, and a registered version of a model
// in MLflow. Nothing is mocked: the folder is what shgat.WriteMLflowModel
// writes and the version is a real one on the tracking server.
package testmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/mlflowclient"
	"github.com/capflow/capflow/models/mlmodel"
	"github.com/capflow/capflow/models/shgat"
)

// Catalog is 16 tools ("tool0"…"tool15", named and described from eight
// topic words), 8 capabilities "cap0"…"cap7" of two tools each and
// "travel" nesting cap0, cap1 and cap2.
func Catalog() ([]featurestore.Tool, []featurestore.Capability) {
	words := []string{"weather", "hotel", "flight", "currency", "stock", "news", "recipe", "music"}
	var tools []featurestore.Tool
	for i := range 16 {
		tools = append(tools, featurestore.Tool{ID: fmt.Sprintf("tool%d", i), Name: fmt.Sprintf("get%s%d", words[i%8], i),
			Description: fmt.Sprintf("returns %s data for a place", words[(i*3)%8])})
	}
	var caps []featurestore.Capability
	for j := range 8 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("cap%d", j), Name: words[j], Members: []string{tools[2*j].ID, tools[2*j+1].ID}})
	}
	caps = append(caps, featurestore.Capability{ID: "travel", Name: "travel", Members: []string{"cap0", "cap1", "cap2"}})
	return tools, caps
}

// Unit is a random d-wide vector of length 1.
func Unit(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	var n float64
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		n += float64(v[i] * v[i])
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

// PackageOptions describe the random model Package writes. Zero fields
// take the defaults given.
type PackageOptions struct {
	// Tools and Caps are the catalog; Catalog() when Tools is nil.
	Tools []featurestore.Tool
	Caps  []featurestore.Capability
	// Dim is the embedding width (required).
	Dim int
	// Seed picks the model's weights.
	Seed uint64
	// InitNoise is shgat.Config.InitNoise; 0.5 when zero.
	InitNoise float64
	// Rand draws the text embeddings, tools first; rand.NewPCG(Seed, 99)
	// when nil. Passing a test's own generator keeps its stream.
	Rand *rand.Rand
	// ToolText are the tools' text embeddings; drawn from Rand when nil.
	ToolText [][]float32
	// FeatureVersion is the catalog's feature version; "fv" when empty.
	FeatureVersion string
	// Broken alters the stored example scores so that verification
	// (ranker.Open, the serving Manager) refuses the folder.
	Broken bool
	// IntentParts is shgat.Config.IntentParts: the model scores an intent
	// as the best of its parts.
	IntentParts bool
	// Contract is the scorer contract the folder records (shgat.Contract
	// when zero): another makes a package of an older or newer capflow.
	Contract int
}

// Packaged is a model written by Package and what it was built from.
type Packaged struct {
	Dir     string // the MLflow Model folder
	Model   *shgat.Model
	Graph   *shgat.Graph
	Catalog *shgat.Catalog
	Tools   []featurestore.Tool
	Caps    []featurestore.Capability
	// ToolText and CapText are the text embeddings message passing
	// started from, one row per tool and capability.
	ToolText, CapText [][]float32
}

// Package writes a random SHGAT model of the catalog, its evidence weights
// (shgat.DefaultEvidence) at 0.5, 1, 2, 0.25, 0.5 and 1, into a fresh MLflow Model folder under t.TempDir().
func Package(t testing.TB, o PackageOptions) *Packaged {
	t.Helper()
	if o.Tools == nil {
		o.Tools, o.Caps = Catalog()
	}
	if o.InitNoise == 0 {
		o.InitNoise = 0.5
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(o.Seed, 99))
	}
	if o.FeatureVersion == "" {
		o.FeatureVersion = "fv"
	}
	d := o.Dim
	p := &Packaged{Tools: o.Tools, Caps: o.Caps, ToolText: o.ToolText}
	var err error
	p.Graph, err = shgat.NewGraph(o.Tools, o.Caps)
	require.NoError(t, err)
	p.Model, err = shgat.New(shgat.Config{Dim: d, Seed: o.Seed, InitNoise: o.InitNoise, EvidenceInit: []float64{0.5, 1, 2, 0.25, 0.5, 1},
		IntentParts: o.IntentParts}, p.Graph.Levels())
	require.NoError(t, err)
	if p.ToolText == nil {
		for range o.Tools {
			p.ToolText = append(p.ToolText, Unit(o.Rand, d))
		}
	}
	for range o.Caps {
		p.CapText = append(p.CapText, Unit(o.Rand, d))
	}
	feats := shgat.Features{Tools: widen(p.ToolText), Caps: widen(p.CapText)}
	reps, err := p.Model.Represent(p.Graph, feats)
	require.NoError(t, err)
	p.Catalog, err = shgat.NewCatalog(p.Graph, reps, nil, o.FeatureVersion)
	require.NoError(t, err)
	for _, v := range p.ToolText {
		p.Catalog.ToolText = append(p.Catalog.ToolText, v...)
	}
	p.Dir = filepath.Join(t.TempDir(), "model")
	var popts shgat.PackageOptions
	if o.Contract != 0 {
		popts.Metadata = map[string]string{shgat.MetaContract: strconv.Itoa(o.Contract)}
	}
	require.NoError(t, shgat.WriteMLflowModel(p.Dir, p.Model, p.Catalog, popts))
	if o.Broken {
		breakScores(t, p.Dir)
	}
	return p
}

// widen flattens rows into one float64 slice, row after row.
func widen(rows [][]float32) []float64 {
	var out []float64
	for _, r := range rows {
		for _, x := range r {
			out = append(out, float64(x))
		}
	}
	return out
}

// breakScores shifts the first stored example score by one.
func breakScores(t testing.TB, dir string) {
	t.Helper()
	file := filepath.Join(dir, "extra_files", filepath.FromSlash(shgat.FileExampleScores))
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var scores []float32
	require.NoError(t, json.Unmarshal(b, &scores))
	scores[0] += 1
	b, err = json.Marshal(scores)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o644))
}

// StoreOptions describe the store Store writes.
type StoreOptions struct {
	// Tools and Caps are the catalog; Catalog() when Tools is nil.
	Tools []featurestore.Tool
	Caps  []featurestore.Capability
	// Dim is the text width (required); the graph width is 8.
	Dim int
	// Rand draws the hybrid embeddings; rand.NewPCG(9, 9) when nil.
	Rand *rand.Rand
	// FeatureVersion of the capability features; "fv" when empty.
	FeatureVersion string
}

// Store opens an embedded store at path holding the catalog and a random
// unit hybrid embedding per capability (what the ANN index searches). It
// is closed when the test ends; closing it earlier (to hand the file to
// another opener) is fine.
func Store(t testing.TB, path string, o StoreOptions) *embedded.Store {
	t.Helper()
	if o.Tools == nil {
		o.Tools, o.Caps = Catalog()
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(9, 9))
	}
	if o.FeatureVersion == "" {
		o.FeatureVersion = "fv"
	}
	ctx := context.Background()
	st, err := embedded.Open(path, featurestore.Config{TextDim: o.Dim, GraphDim: 8})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.WriteDataset(ctx, &featurestore.Dataset{Tools: o.Tools, Capabilities: o.Caps}))
	rows := make([]featurestore.CapabilityFeatures, len(o.Caps))
	for i, cp := range o.Caps {
		rows[i] = featurestore.CapabilityFeatures{CapabilityID: cp.ID, TextEmbedding: Unit(o.Rand, o.Dim), HybridEmbedding: Unit(o.Rand, o.Dim),
			FeatureVersion: o.FeatureVersion, ComputedAt: time.Now()}
	}
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, rows))
	return st
}

// Register logs the model folder dir from a new run of the experiment
// named name and registers it as the next version of the model name; it
// returns that version.
func Register(t testing.TB, ctx context.Context, c *mlflowclient.Client, name, dir string) string {
	t.Helper()
	exp, err := c.Experiments.GetOrCreate(ctx, name)
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: exp.ID, RunName: "testmodel"})
	require.NoError(t, err)
	lm, err := mlmodel.Log(ctx, c, run.Info.RunID, dir, mlmodel.LogOptions{})
	require.NoError(t, err)
	mv, err := mlmodel.Register(ctx, c, mlmodel.RegisterOptions{Name: name, ModelID: lm.ID(), RunID: run.Info.RunID})
	require.NoError(t, err)
	return mv.Version
}

// Forget deletes the registered model name and the experiment of that name
// when the test ends, so that test runs leave no models behind.
func Forget(t testing.TB, c *mlflowclient.Client, name string) {
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.Registry.DeleteModel(ctx, name)
		if exp, err := c.Experiments.GetByName(ctx, name); err == nil {
			_ = c.Experiments.Delete(ctx, exp.ID)
		}
	})
}
