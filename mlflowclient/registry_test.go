package mlflowclient

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStageIsCaseInsensitive(t *testing.T) {
	for in, want := range map[string]Stage{
		"None": StageNone, "none": StageNone, "staging": StageStaging, "STAGING": StageStaging,
		"Production": StageProduction, "pRoDuCtIoN": StageProduction, "archived": StageArchived,
	} {
		got, err := ParseStage(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "Prod", "Deleted_Internal", "latest", " Production"} {
		_, err := ParseStage(in)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, in)
	}
}

func TestValidateAliasFollowsServerRules(t *testing.T) {
	ok := []string{"champion", "Champ_2", "a-b", "v", "vx1", "v1a", "ünïcode", strings.Repeat("a", 255)}
	for _, a := range ok {
		assert.NoError(t, validateAlias(a, true), a)
	}
	bad := map[string]string{
		"":                       "is empty",
		"has space":              "alphanumerics",
		"dot.alias":              "alphanumerics",
		"slash/alias":            "alphanumerics",
		strings.Repeat("a", 256): "longer than 255",
		"latest":                 "reserved",
		"LATEST":                 "reserved",
		"v1":                     "reserved",
		"V42":                    "reserved",
	}
	for a, want := range bad {
		err := validateAlias(a, true)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, a)
		assert.Contains(t, err.Error(), want, a)
	}
	// Reserved names are only refused when setting: an old alias can still be read or deleted.
	assert.NoError(t, validateAlias("v1", false))
	assert.NoError(t, validateAlias("latest", false))
}

func TestRegistryValidatesBeforeSending(t *testing.T) {
	srv, calls := fakeMLflow(t, nil) // counts requests: none may be sent
	c := testClient(t, srv.URL)
	ctx := context.Background()
	check := func(name string, err error, field string) {
		t.Helper()
		var ve *ValidationError
		if assert.ErrorAs(t, err, &ve, name) {
			assert.Equal(t, field, ve.Field, name)
		}
	}
	_, err := c.Registry.CreateModel(ctx, CreateModelOptions{Name: " "})
	check("empty name", err, "registered model name")
	_, err = c.Registry.CreateModel(ctx, CreateModelOptions{Name: "a/b"})
	check("slash", err, "registered model name")
	_, err = c.Registry.CreateModel(ctx, CreateModelOptions{Name: "a:b"})
	check("colon", err, "registered model name")
	_, err = c.Registry.CreateModel(ctx, CreateModelOptions{Name: "ok", Tags: []Tag{{"../x", "v"}}})
	check("tag key", err, "tag key")
	_, err = c.Registry.CreateModel(ctx, CreateModelOptions{Name: "ok", Tags: []Tag{{"k", strings.Repeat("x", 100_001)}}})
	check("tag value", err, "tag value")
	_, err = c.Registry.RenameModel(ctx, "ok", "new/name")
	check("rename", err, "new registered model name")
	_, err = c.Registry.GetVersion(ctx, "ok", "three")
	check("version", err, "model version")
	_, err = c.Registry.GetVersion(ctx, "ok", "")
	check("no version", err, "model version")
	_, err = c.Registry.TransitionStage(ctx, "ok", "1", "Prod", false)
	check("stage", err, "model version stage")
	_, err = c.Registry.GetLatestVersions(ctx, "ok", "Staging", "bogus")
	check("latest stage", err, "model version stage")
	check("alias", c.Registry.SetAlias(ctx, "ok", "v3", "3"), "alias")
	_, err = c.Registry.CreateVersion(ctx, CreateVersionOptions{Name: "ok"})
	check("source", err, "model version source")
	_, err = c.Registry.SearchModels(ctx, SearchOptions{MaxResults: 1001})
	check("max results", err, "max_results")
	_, err = c.LoggedModels.Create(ctx, CreateLoggedModelOptions{ExperimentID: "1", Name: "a.b"})
	check("logged model name", err, "logged model name")
	_, err = c.LoggedModels.Finalize(ctx, "m-1", LoggedModelPending)
	check("finalize status", err, "logged model status")
	_, err = c.LoggedModels.Create(ctx, CreateLoggedModelOptions{ExperimentID: "1", Params: []Param{{"a", "1"}, {"a", "2"}}})
	check("duplicate param", err, "param key")
	check("tag key with slash", c.LoggedModels.DeleteTag(ctx, "m-1", "a/b"), "tag key")
	_, err = c.LoggedModels.Search(ctx, SearchLoggedModelsOptions{})
	check("experiment ids", err, "experiment_ids")
	assert.Zero(t, calls.Load())
}

func TestWaitVersionReadyPollsPendingRegistration(t *testing.T) {
	// The sqlite server registers synchronously; asynchronous registries
	// (e.g. Databricks) answer PENDING_REGISTRATION first.
	var polls atomic.Int32
	srv, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/model-versions/get": func(r *http.Request) (int, any) {
			status := "PENDING_REGISTRATION"
			if polls.Add(1) >= 3 {
				status = "READY"
			}
			return 200, map[string]any{"model_version": map[string]any{
				"name": r.URL.Query().Get("name"), "version": r.URL.Query().Get("version"), "status": status}}
		},
	})
	c := testClient(t, srv.URL)
	mv, err := c.Registry.WaitVersionReady(context.Background(), "clf", "2")
	require.NoError(t, err)
	assert.Equal(t, VersionReady, mv.Status)
	assert.Equal(t, int32(3), polls.Load())
}

func TestWaitVersionReadyFailedRegistration(t *testing.T) {
	srv, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/model-versions/get": func(*http.Request) (int, any) {
			return 200, map[string]any{"model_version": map[string]any{
				"name": "clf", "version": "2", "status": "FAILED_REGISTRATION", "status_message": "copy failed: disk full"}}
		},
	})
	c := testClient(t, srv.URL)
	mv, err := c.Registry.WaitVersionReady(context.Background(), "clf", "2")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disk full")
	require.NotNil(t, mv)
	assert.Equal(t, VersionFailedRegistration, mv.Status)
}

func TestWaitVersionReadyHonoursContext(t *testing.T) {
	srv, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/model-versions/get": func(*http.Request) (int, any) {
			return 200, map[string]any{"model_version": map[string]any{"name": "clf", "version": "2", "status": "PENDING_REGISTRATION"}}
		},
	})
	c := testClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Registry.WaitVersionReady(ctx, "clf", "2")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "still PENDING_REGISTRATION")
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestLoggedModelStatusAcceptsNumbers(t *testing.T) {
	var m LoggedModel
	require.NoError(t, json.Unmarshal([]byte(`{"info":{"model_id":"m-1","status":2,"creator_id":7}}`), &m))
	assert.Equal(t, LoggedModelReady, m.Info.Status)
	require.NoError(t, json.Unmarshal([]byte(`{"info":{"status":"LOGGED_MODEL_UPLOAD_FAILED"}}`), &m))
	assert.Equal(t, LoggedModelUploadFailed, m.Info.Status)
	assert.Error(t, json.Unmarshal([]byte(`{"info":{"status":{}}}`), &m))
}

func TestModelVersionMetricsDecodeNonFinite(t *testing.T) {
	var mv ModelVersion
	require.NoError(t, json.Unmarshal([]byte(`{"name":"clf","version":"1","model_metrics":[{"key":"loss","value":"NaN","step":1}],
		"model_params":[{"name":"lr","value":"0.1"}]}`), &mv))
	require.Len(t, mv.ModelMetrics, 1)
	assert.True(t, mv.ModelMetrics[0].Value != mv.ModelMetrics[0].Value) // NaN
	assert.Equal(t, []ModelParam{{"lr", "0.1"}}, mv.ModelParams)
	assert.Equal(t, "models:/clf/1", mv.URI())
}
