package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// regModel creates a registered model deleted when the test ends.
func regModel(t *testing.T, c *mlflowclient.Client, opts mlflowclient.CreateModelOptions) *mlflowclient.RegisteredModel {
	t.Helper()
	m, err := c.Registry.CreateModel(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Registry.DeleteModel(context.Background(), m.Name) })
	return m
}

// regWriteModelDir writes a small MLflow model folder whose files carry marker.
func regWriteModelDir(t *testing.T, marker string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	mlmodel := "artifact_path: model\nflavors:\n  capflow:\n    marker: " + marker + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "MLmodel"), []byte(mlmodel), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data", "weights.bin"), []byte("weights-"+marker), 0o644))
	return dir
}

// regAssertModelDir checks that dir holds the model folder written with marker.
func regAssertModelDir(t *testing.T, dir, marker string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "MLmodel"))
	require.NoError(t, err, "MLmodel in %s", dir)
	assert.Contains(t, string(b), "marker: "+marker+"\n", dir)
	b, err = os.ReadFile(filepath.Join(dir, "data", "weights.bin"))
	require.NoError(t, err)
	assert.Equal(t, "weights-"+marker, string(b), dir)
}

func TestRegistryModelCRUD(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	name := testenv.Name(t, "rm")

	m := regModel(t, c, mlflowclient.CreateModelOptions{Name: name, Description: "first",
		Tags: []mlflowclient.Tag{{Key: "team", Value: "ml"}, {Key: "task", Value: "captioning"}}})
	assert.Equal(t, name, m.Name)
	assert.Equal(t, "first", m.Description)
	assert.Positive(t, m.CreationTimestamp)

	_, err := c.Registry.CreateModel(ctx, mlflowclient.CreateModelOptions{Name: name})
	assert.True(t, mlflowclient.IsAlreadyExists(err), "duplicate create: %v", err)

	got, err := c.Registry.GetOrCreateModel(ctx, mlflowclient.CreateModelOptions{Name: name, Description: "ignored"})
	require.NoError(t, err)
	assert.Equal(t, "first", got.Description, "GetOrCreateModel returns the existing model unchanged")

	fresh := testenv.Name(t, "rm-goc")
	got, err = c.Registry.GetOrCreateModel(ctx, mlflowclient.CreateModelOptions{Name: fresh, Description: "new"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Registry.DeleteModel(context.Background(), fresh) })
	assert.Equal(t, fresh, got.Name)
	assert.Equal(t, "new", got.Description)

	got, err = c.Registry.UpdateModel(ctx, name, "second")
	require.NoError(t, err)
	assert.Equal(t, "second", got.Description)

	require.NoError(t, c.Registry.SetModelTag(ctx, name, "team", "infra"))
	require.NoError(t, c.Registry.DeleteModelTag(ctx, name, "task"))
	got, err = c.Registry.GetModel(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "second", got.Description)
	v, _ := got.Tag("team")
	assert.Equal(t, "infra", v)
	_, ok := got.Tag("task")
	assert.False(t, ok)

	renamed := name + " renamed" // names may contain spaces
	got, err = c.Registry.RenameModel(ctx, name, renamed)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Registry.DeleteModel(context.Background(), renamed) })
	assert.Equal(t, renamed, got.Name)
	_, err = c.Registry.GetModel(ctx, name)
	assert.True(t, mlflowclient.IsNotFound(err), "old name: %v", err)

	require.NoError(t, c.Registry.DeleteModel(ctx, renamed))
	_, err = c.Registry.GetModel(ctx, renamed)
	assert.True(t, mlflowclient.IsNotFound(err), "deleted: %v", err)
	err = c.Registry.DeleteModel(ctx, renamed)
	assert.True(t, mlflowclient.IsNotFound(err), "delete twice: %v", err)
}

func TestRegistrySearchPaging(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	prefix := testenv.Name(t, "rmpage")
	var want []string
	for i := range 5 {
		n := fmt.Sprintf("%s-%d", prefix, i)
		regModel(t, c, mlflowclient.CreateModelOptions{Name: n, Tags: []mlflowclient.Tag{{Key: "batch", Value: prefix}}})
		want = append(want, n)
	}

	opts := mlflowclient.SearchOptions{Filter: "name LIKE '" + prefix + "-%'", OrderBy: []string{"name ASC"}, MaxResults: 2}
	first, err := c.Registry.SearchModels(ctx, opts)
	require.NoError(t, err)
	require.Len(t, first.Items, 2)
	assert.NotEmpty(t, first.NextPageToken)

	var got []string
	for m, err := range c.Registry.AllModels(ctx, opts) {
		require.NoError(t, err)
		got = append(got, m.Name)
	}
	assert.Equal(t, want, got)

	opts = mlflowclient.SearchOptions{Filter: "tags.batch = '" + prefix + "'", OrderBy: []string{"name DESC"}, MaxResults: 3}
	desc, err := mlflowclient.Collect(c.Registry.AllModels(ctx, opts))
	require.NoError(t, err)
	require.Len(t, desc, 5)
	assert.Equal(t, want[4], desc[0].Name)
	assert.Equal(t, want[0], desc[4].Name)
}

// regFixture is a registered model with versions from a run, a run artifact
// URI and a logged model, each with distinct files.
type regFixture struct {
	c     *mlflowclient.Client
	name  string
	expID string
	run   *mlflowclient.Run
	model *mlflowclient.LoggedModel
	v1    *mlflowclient.ModelVersion // source runs:/<run>/model_a
	v2    *mlflowclient.ModelVersion // source <run artifact uri>/model_b
	v3    *mlflowclient.ModelVersion // source models:/<model_id>
}

func newRegFixture(t *testing.T) *regFixture {
	t.Helper()
	c := testenv.Client(t)
	ctx := context.Background()
	f := &regFixture{c: c, name: testenv.Name(t, "rmv") + " with spaces"}
	f.expID, f.run = regExperimentAndRun(t, c)
	root := f.run.Info.ArtifactURI
	require.NoError(t, c.Artifacts.UploadDir(ctx, root, regWriteModelDir(t, "a"), "model_a"))
	require.NoError(t, c.Artifacts.UploadDir(ctx, root, regWriteModelDir(t, "b"), "model_b"))

	var err error
	f.model, err = c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{
		ExperimentID: f.expID, Name: "clf", SourceRunID: f.run.Info.RunID})
	require.NoError(t, err)
	require.NoError(t, c.Artifacts.UploadDir(ctx, f.model.Info.ArtifactURI, regWriteModelDir(t, "c"), ""))
	f.model, err = c.LoggedModels.Finalize(ctx, f.model.ID(), mlflowclient.LoggedModelReady)
	require.NoError(t, err)

	regModel(t, c, mlflowclient.CreateModelOptions{Name: f.name})
	create := func(o mlflowclient.CreateVersionOptions) *mlflowclient.ModelVersion {
		t.Helper()
		o.Name = f.name
		mv, err := c.Registry.CreateVersion(ctx, o)
		require.NoError(t, err, "create version from %s", o.Source)
		mv, err = c.Registry.WaitVersionReady(ctx, f.name, mv.Version)
		require.NoError(t, err)
		assert.Equal(t, mlflowclient.VersionReady, mv.Status)
		return mv
	}
	f.v1 = create(mlflowclient.CreateVersionOptions{Source: "runs:/" + f.run.Info.RunID + "/model_a", RunID: f.run.Info.RunID,
		Description: "from runs:/", Tags: []mlflowclient.Tag{{Key: "origin", Value: "run"}}})
	f.v2 = create(mlflowclient.CreateVersionOptions{Source: root + "/model_b", RunID: f.run.Info.RunID})
	f.v3 = create(mlflowclient.CreateVersionOptions{Source: f.model.URI(), ModelID: f.model.ID(), RunLink: "http://example.invalid/run"})
	return f
}

func TestRegistryVersionsStagesAndAliases(t *testing.T) {
	f := newRegFixture(t)
	c, ctx, name := f.c, context.Background(), f.name

	// Versions as created.
	assert.Equal(t, []string{"1", "2", "3"}, []string{f.v1.Version, f.v2.Version, f.v3.Version})
	assert.Equal(t, "runs:/"+f.run.Info.RunID+"/model_a", f.v1.Source)
	assert.Equal(t, f.run.Info.RunID, f.v1.RunID)
	assert.Equal(t, "from runs:/", f.v1.Description)
	v, _ := f.v1.Tag("origin")
	assert.Equal(t, "run", v)
	assert.Equal(t, mlflowclient.StageNone, f.v1.CurrentStage)
	assert.Equal(t, f.model.URI(), f.v3.Source)
	if f.v3.ModelID != "" { // the sqlite store does not echo model_id back
		assert.Equal(t, f.model.ID(), f.v3.ModelID)
	}
	assert.Equal(t, f.run.Info.RunID, f.v3.RunID, "a version from a logged model inherits its source run")
	assert.Equal(t, "models:/"+name+"/3", f.v3.URI())

	// The logged model records its registration.
	lm, err := c.LoggedModels.Get(ctx, f.model.ID())
	require.NoError(t, err)
	assert.Equal(t, []mlflowclient.LoggedModelRegistered{{Name: name, Version: "3"}}, lm.ModelVersions())

	mv, err := c.Registry.UpdateVersion(ctx, name, "2", "second version")
	require.NoError(t, err)
	assert.Equal(t, "second version", mv.Description)
	require.NoError(t, c.Registry.SetVersionTag(ctx, name, "2", "quality", "good"))
	require.NoError(t, c.Registry.SetVersionTag(ctx, name, "2", "tmp", "x"))
	require.NoError(t, c.Registry.DeleteVersionTag(ctx, name, "2", "tmp"))
	mv, err = c.Registry.GetVersion(ctx, name, "2")
	require.NoError(t, err)
	v, _ = mv.Tag("quality")
	assert.Equal(t, "good", v)
	_, ok := mv.Tag("tmp")
	assert.False(t, ok)
	assert.Equal(t, "second version", mv.Description)

	// Download URIs as the registry stores them.
	uri, err := c.Registry.GetDownloadURI(ctx, name, "1")
	require.NoError(t, err)
	assert.Equal(t, "runs:/"+f.run.Info.RunID+"/model_a", uri)
	uri, err = c.Registry.GetDownloadURI(ctx, name, "2")
	require.NoError(t, err)
	assert.Equal(t, f.run.Info.ArtifactURI+"/model_b", uri)
	uri, err = c.Registry.GetDownloadURI(ctx, name, "3")
	require.NoError(t, err)
	assert.Equal(t, f.model.Info.ArtifactURI, uri)

	// Stages: v1 Staging → Production; v2 Production archiving v1.
	mv, err = c.Registry.TransitionStage(ctx, name, "1", "staging", false)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageStaging, mv.CurrentStage)
	_, err = c.Registry.TransitionStage(ctx, name, "1", "Production", false)
	require.NoError(t, err)
	_, err = c.Registry.TransitionStage(ctx, name, "2", "Staging", false)
	require.NoError(t, err)
	mv, err = c.Registry.TransitionStage(ctx, name, "2", "PRODUCTION", true)
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageProduction, mv.CurrentStage)
	mv, err = c.Registry.GetVersion(ctx, name, "1")
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageArchived, mv.CurrentStage, "archive_existing_versions archived the previous Production version")

	versionsOf := func(stages ...mlflowclient.Stage) []string {
		t.Helper()
		mvs, err := c.Registry.GetLatestVersions(ctx, name, stages...)
		require.NoError(t, err)
		var out []string
		for _, mv := range mvs {
			out = append(out, mv.Version+"@"+string(mv.CurrentStage))
		}
		return out
	}
	assert.Equal(t, []string{"2@Production"}, versionsOf("production"))
	assert.Empty(t, versionsOf("Staging"))
	assert.Equal(t, []string{"1@Archived"}, versionsOf("Archived"))
	assert.ElementsMatch(t, []string{"1@Archived", "2@Production", "3@None"}, versionsOf())
	var ve *mlflowclient.ValidationError
	_, err = c.Registry.TransitionStage(ctx, name, "3", "Prod", false)
	require.ErrorAs(t, err, &ve)

	// Aliases: set, move, delete.
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", "1"))
	mv, err = c.Registry.GetByAlias(ctx, name, "champion")
	require.NoError(t, err)
	assert.Equal(t, "1", mv.Version)
	assert.Contains(t, mv.Aliases, "champion")
	require.NoError(t, c.Registry.SetAlias(ctx, name, "champion", "3"))
	mv, err = c.Registry.GetByAlias(ctx, name, "champion")
	require.NoError(t, err)
	assert.Equal(t, "3", mv.Version, "alias moved")
	rm, err := c.Registry.GetModel(ctx, name)
	require.NoError(t, err)
	av, _ := rm.Alias("champion")
	assert.Equal(t, "3", av)
	require.NoError(t, c.Registry.SetAlias(ctx, name, "challenger", "2"))
	require.NoError(t, c.Registry.DeleteAlias(ctx, name, "challenger"))
	_, err = c.Registry.GetByAlias(ctx, name, "challenger")
	assert.True(t, mlflowclient.IsNotFound(err), "deleted alias: %v", err)
	require.ErrorAs(t, c.Registry.SetAlias(ctx, name, "v2", "2"), &ve)

	// Versions search, paged.
	opts := mlflowclient.SearchOptions{Filter: "name = '" + name + "'", OrderBy: []string{"version_number ASC"}, MaxResults: 2}
	page, err := c.Registry.SearchVersions(ctx, opts)
	require.NoError(t, err)
	assert.Len(t, page.Items, 2)
	assert.NotEmpty(t, page.NextPageToken)
	all, err := mlflowclient.Collect(c.Registry.AllVersions(ctx, opts))
	require.NoError(t, err)
	var versions []string
	for _, mv := range all {
		versions = append(versions, mv.Version)
	}
	assert.Equal(t, []string{"1", "2", "3"}, versions)
	byRun, err := mlflowclient.Collect(c.Registry.AllVersions(ctx, mlflowclient.SearchOptions{
		Filter: "name = '" + name + "' AND run_id = '" + f.run.Info.RunID + "'"}))
	require.NoError(t, err)
	assert.Len(t, byRun, 3)

	// Downloads through every URI form.
	dl := func(uri string) string {
		t.Helper()
		dir := t.TempDir()
		p, err := c.DownloadURI(ctx, uri, dir)
		require.NoError(t, err, uri)
		return p
	}
	regAssertModelDir(t, dl("models:/"+name+"/Production"), "b")
	regAssertModelDir(t, dl("models:/"+name+"/production"), "b")
	regAssertModelDir(t, dl("models:/"+name+"/archived"), "a")
	regAssertModelDir(t, dl("models:/"+name+"@champion"), "c")
	regAssertModelDir(t, dl("models:/"+name+"/3"), "c")
	regAssertModelDir(t, dl("models:/"+name+"/1"), "a")
	regAssertModelDir(t, dl("models:/"+name+"/latest"), "c")
	regAssertModelDir(t, dl("models:/"+f.model.ID()), "c")
	p := dl("runs:/" + f.run.Info.RunID + "/model_b")
	assert.Equal(t, "model_b", filepath.Base(p))
	regAssertModelDir(t, p, "b")
	regAssertModelDir(t, filepath.Join(dl("runs:/"+f.run.Info.RunID), "model_a"), "a")
	p = dl(f.run.Info.ArtifactURI + "/model_a")
	assert.Equal(t, "model_a", filepath.Base(p))
	regAssertModelDir(t, p, "a")
	// A single file below a version.
	p = dl("models:/" + name + "/2/data/weights.bin")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "weights-b", string(b))

	rc, err := c.OpenURI(ctx, "models:/"+name+"@champion/MLmodel")
	require.NoError(t, err)
	b, err = io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	assert.Contains(t, string(b), "marker: c")

	r, err := c.ResolveURI(ctx, "models:/"+name+"@champion/MLmodel")
	require.NoError(t, err)
	assert.Equal(t, f.model.Info.ArtifactURI, r.Root)
	assert.Equal(t, "MLmodel", r.Path)
	assert.Equal(t, name, r.ModelName)
	assert.Equal(t, "3", r.ModelVersion)
	r, err = c.ResolveURI(ctx, "models:/"+name+"/1")
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.ResolvedURI{Root: f.run.Info.ArtifactURI + "/model_a", ModelName: name, ModelVersion: "1", RunID: f.run.Info.RunID}, *r)

	// Names that resolve to nothing.
	_, err = c.ResolveURI(ctx, "models:/"+name+"/Staging")
	assert.True(t, mlflowclient.IsNotFound(err), "no Staging version: %v", err)
	assert.Contains(t, err.Error(), "in stage Staging")
	_, err = c.ResolveURI(ctx, "models:/"+name+"@nobody")
	assert.True(t, mlflowclient.IsNotFound(err), "unknown alias: %v", err)
	_, err = c.ResolveURI(ctx, "models:/"+name+"/99")
	assert.True(t, mlflowclient.IsNotFound(err), "unknown version: %v", err)
	_, err = c.ResolveURI(ctx, "models:/m-00000000000000000000000000000000")
	assert.True(t, mlflowclient.IsNotFound(err), "unknown logged model: %v", err)
	_, err = c.DownloadURI(ctx, "models:/"+name+"/Prod", t.TempDir())
	require.ErrorAs(t, err, &ve)

	// Deleting a version.
	require.NoError(t, c.Registry.DeleteVersion(ctx, name, "1"))
	_, err = c.Registry.GetVersion(ctx, name, "1")
	assert.True(t, mlflowclient.IsNotFound(err), "deleted version: %v", err)
}

func TestRegistryVersionOutsideTheProxy(t *testing.T) {
	// A version whose files are in a store the tracking server does not proxy.
	c := testenv.Client(t)
	ctx := context.Background()
	m := regModel(t, c, mlflowclient.CreateModelOptions{Name: testenv.Name(t, "rm-s3")})
	mv, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{Name: m.Name, Source: "s3://capflow-test-bucket/models/clf"})
	require.NoError(t, err)
	_, err = c.ResolveURI(ctx, mv.URI())
	var ve *mlflowclient.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "s3://capflow-test-bucket/models/clf", ve.Value)
	assert.Contains(t, err.Error(), "artifact proxy")
}

// MLflow 3 stores a model logged by a run (mlflow.<flavor>.log_model) under
// the logged model's own location; runs:/<run>/<name> and versions registered
// from it still reach those files.
func TestRunsURIReachesTheRunsLoggedModel(t *testing.T) {
	c := testenv.Client(t)
	ctx := context.Background()
	expID, run := regExperimentAndRun(t, c)
	m, err := c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{ExperimentID: expID, Name: "captioner", SourceRunID: run.Info.RunID})
	require.NoError(t, err)
	require.NoError(t, c.Artifacts.UploadDir(ctx, m.Info.ArtifactURI, regWriteModelDir(t, "logged"), ""))
	_, err = c.LoggedModels.Finalize(ctx, m.ID(), mlflowclient.LoggedModelReady)
	require.NoError(t, err)
	// Another run's model of the same name must not be picked up.
	other, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID})
	require.NoError(t, err)
	_, err = c.LoggedModels.Create(ctx, mlflowclient.CreateLoggedModelOptions{ExperimentID: expID, Name: "captioner", SourceRunID: other.Info.RunID})
	require.NoError(t, err)

	dir := t.TempDir()
	p, err := c.DownloadURI(ctx, "runs:/"+run.Info.RunID+"/captioner", dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "captioner"), p, "laid out like the official client")
	regAssertModelDir(t, p, "logged")

	rc, err := c.OpenURI(ctx, "runs:/"+run.Info.RunID+"/captioner/data/weights.bin")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	assert.Equal(t, "weights-logged", string(b))

	rm := regModel(t, c, mlflowclient.CreateModelOptions{Name: testenv.Name(t, "rm-run") + " spaced"})
	mv, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{Name: rm.Name,
		Source: "runs:/" + run.Info.RunID + "/captioner", RunID: run.Info.RunID})
	require.NoError(t, err)
	r, err := c.ResolveURI(ctx, mv.URI())
	require.NoError(t, err)
	assert.Equal(t, m.Info.ArtifactURI, r.Root)
	assert.Equal(t, "", r.Path)
	assert.Equal(t, m.ID(), r.ModelID)
	regAssertModelDir(t, regDownload(t, c, mv.URI()), "logged")

	// The official client puts the same files in the same places.
	mv2, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{Name: rm.Name, Source: m.URI(), ModelID: m.ID()})
	require.NoError(t, err)
	require.NoError(t, c.Registry.SetAlias(ctx, rm.Name, "prod", mv2.Version))
	require.NoError(t, c.Artifacts.UploadDir(ctx, run.Info.ArtifactURI, regWriteModelDir(t, "plain"), "plain"))
	mv3, err := c.Registry.CreateVersion(ctx, mlflowclient.CreateVersionOptions{Name: rm.Name,
		Source: "runs:/" + run.Info.RunID + "/plain", RunID: run.Info.RunID})
	require.NoError(t, err)
	_, err = c.Registry.TransitionStage(ctx, rm.Name, mv3.Version, "Production", false)
	require.NoError(t, err)
	uris := []string{
		"runs:/" + run.Info.RunID + "/plain",
		"models:/" + rm.Name + "/Production",
		"models:/" + rm.Name + "/latest/MLmodel",
		run.Info.ArtifactURI + "/plain",
		"runs:/" + run.Info.RunID + "/captioner",
		"runs:/" + run.Info.RunID + "/captioner/data/weights.bin",
		mv.URI(),
		"models:/" + rm.Name + "@prod",
		m.URI(),
		m.Info.ArtifactURI + "/data",
		"runs:/" + run.Info.RunID + "/plain/data/weights.bin",
		"models:/" + rm.Name + "/" + mv3.Version + "/data",
	}
	py := testenv.Python(t)
	pyOut, goOut := t.TempDir(), t.TempDir()
	script := `
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
for i, uri in enumerate(sys.argv[3:]):
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=f"{sys.argv[2]}/{i}")
`
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script, testenv.MLflowURI(t), pyOut}, uris...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // progress bars and warnings
	require.NoError(t, cmd.Run(), "%s", stderr.String())
	for i, uri := range uris {
		dst := filepath.Join(goOut, fmt.Sprint(i))
		_, err := c.DownloadURI(ctx, uri, dst)
		require.NoError(t, err, uri)
		want, got := regTree(t, filepath.Join(pyOut, fmt.Sprint(i))), regTree(t, dst)
		assert.NotEmpty(t, got, uri)
		assert.Equal(t, want, got, "files downloaded for %s (official client vs ours)", uri)
	}
}

// regTree lists the files below dir with their contents, leaving out the
// registered_model_meta file the official client adds to model downloads.
func regTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "registered_model_meta" {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	require.NoError(t, err)
	return out
}

func regDownload(t *testing.T, c *mlflowclient.Client, uri string) string {
	t.Helper()
	p, err := c.DownloadURI(context.Background(), uri, t.TempDir())
	require.NoError(t, err, uri)
	return p
}
