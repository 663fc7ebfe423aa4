package mlflowclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testRunID = "0123456789abcdef0123456789abcdef"

func TestParseURIForms(t *testing.T) {
	cases := []struct {
		in   string
		want URI
		str  string // canonical String(); "" means same as in
	}{
		{"models:/clf/3", URI{Kind: URIModelVersion, Name: "clf", Version: "3"}, ""},
		{"models:/clf/12/MLmodel", URI{Kind: URIModelVersion, Name: "clf", Version: "12", Path: "MLmodel"}, ""},
		{"models:/clf/1/data/model.onnx", URI{Kind: URIModelVersion, Name: "clf", Version: "1", Path: "data/model.onnx"}, ""},
		{"models:/clf/3/", URI{Kind: URIModelVersion, Name: "clf", Version: "3"}, "models:/clf/3"},
		{"models:/clf/Production", URI{Kind: URIModelStage, Name: "clf", Stage: StageProduction}, ""},
		{"models:/clf/production", URI{Kind: URIModelStage, Name: "clf", Stage: StageProduction}, "models:/clf/Production"},
		{"models:/clf/STAGING/MLmodel", URI{Kind: URIModelStage, Name: "clf", Stage: StageStaging, Path: "MLmodel"}, "models:/clf/Staging/MLmodel"},
		{"models:/clf/None", URI{Kind: URIModelStage, Name: "clf", Stage: StageNone}, ""},
		{"models:/clf/archived", URI{Kind: URIModelStage, Name: "clf", Stage: StageArchived}, "models:/clf/Archived"},
		{"models:/clf/latest", URI{Kind: URIModelLatest, Name: "clf"}, ""},
		{"models:/clf/LATEST/a", URI{Kind: URIModelLatest, Name: "clf", Path: "a"}, "models:/clf/latest/a"},
		{"models:/clf@champion", URI{Kind: URIModelAlias, Name: "clf", Alias: "champion"}, ""},
		{"models:/clf@champ-1_x/MLmodel", URI{Kind: URIModelAlias, Name: "clf", Alias: "champ-1_x", Path: "MLmodel"}, ""},
		{"models:/a@b@c", URI{Kind: URIModelAlias, Name: "a@b", Alias: "c"}, ""}, // rsplit on the last @, as upstream
		{"models:/my model/2", URI{Kind: URIModelVersion, Name: "my model", Version: "2"}, ""},
		{"models:/my model@prod", URI{Kind: URIModelAlias, Name: "my model", Alias: "prod"}, ""},
		{"models:/m-0123abcd", URI{Kind: URILoggedModel, ModelID: "m-0123abcd"}, ""},
		{"models:/m-0123abcd/", URI{Kind: URILoggedModel, ModelID: "m-0123abcd"}, "models:/m-0123abcd"},
		{"runs:/" + testRunID, URI{Kind: URIRun, RunID: testRunID}, ""},
		{"runs:/" + testRunID + "/", URI{Kind: URIRun, RunID: testRunID}, "runs:/" + testRunID},
		{"runs:/" + testRunID + "/model", URI{Kind: URIRun, RunID: testRunID, Path: "model"}, ""},
		{"runs:/" + testRunID + "/model/sub dir/MLmodel", URI{Kind: URIRun, RunID: testRunID, Path: "model/sub dir/MLmodel"}, ""},
		{"mlflow-artifacts:/1/abc/artifacts/model", URI{Kind: URIArtifact, Artifact: "mlflow-artifacts:/1/abc/artifacts/model"}, ""},
		{"mlflow-artifacts://host:5000/1/abc", URI{Kind: URIArtifact, Artifact: "mlflow-artifacts://host:5000/1/abc"}, ""},
		{"https://h/api/2.0/mlflow-artifacts/artifacts/1/abc", URI{Kind: URIArtifact, Artifact: "https://h/api/2.0/mlflow-artifacts/artifacts/1/abc"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseURI(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, *got)
			want := tc.str
			if want == "" {
				want = tc.in
			}
			assert.Equal(t, want, got.String())
			// The canonical form parses to the same thing.
			again, err := ParseURI(got.String())
			require.NoError(t, err)
			assert.Equal(t, *got, *again)
		})
	}
}

func TestParseURIRejectsMalformed(t *testing.T) {
	cases := map[string]string{
		"":                              "has no scheme",
		"clf/3":                         "has no scheme",
		"s3://bucket/model":             `scheme "s3" is not supported`,
		"file:///tmp/model":             `scheme "file" is not supported`,
		"models:":                       "must look like models:/",
		"models:/":                      "must look like models:/",
		"models:clf/3":                  "must look like models:/",
		"models://profile@databricks/a": "host-qualified",
		"models:/clf/3?x=1":             "query or fragment",
		"models:/clf/3#frag":            "query or fragment",
		"models:/ /3":                   "empty model name",
		"models:/clf/ ":                 "empty version or stage",
		"models:/clf//MLmodel":          "empty version or stage",
		"models:/clf/Prod":              `"Prod" is neither a version, a stage`,
		"models:/clf/v3":                `"v3" is neither a version`,
		"models:/clf/-1":                `"-1" is neither a version`,
		"models:/clf@":                  "alias URIs look like",
		"models:/@champ":                "alias URIs look like",
		"models:/clf@bad.alias":         "may only contain alphanumerics",
		"models:/clf/3/../../etc":       "'..' segment",
		"models:/clf/3/a//b":            "empty, '.' or '..' segment",
		"runs:":                         "must look like runs:/",
		"runs:/":                        "must look like runs:/",
		"runs://host/" + testRunID:      "host-qualified",
		"runs:/bad id!/x":               "run id",
		"runs:/" + testRunID + "/../x":  "'..' segment",
		"mlflow-artifacts:":             "has no path",
		"mlflow-artifacts:/":            "has no path",
		"mlflow-artifacts:/1/../x":      `".." segments`,
		"https://example.com/model.bin": "not an MLflow artifact proxy",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			_, err := ParseURI(in)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "URI", ve.Field)
			assert.Contains(t, err.Error(), want)
		})
	}
}

func TestSplitArtifactURI(t *testing.T) {
	for in, want := range map[string][2]string{
		"mlflow-artifacts:/1/abc/artifacts/model":                     {"mlflow-artifacts:/1/abc/artifacts", "model"},
		"mlflow-artifacts:/1/abc/artifacts/model/":                    {"mlflow-artifacts:/1/abc/artifacts", "model"},
		"mlflow-artifacts:/x":                                         {"mlflow-artifacts:/x", ""}, // "mlflow-artifacts:/" is no root
		"http://h/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/m": {"http://h/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts", "m"},
		"mlflow-artifacts://host:5000/a/b":                            {"mlflow-artifacts://host:5000/a", "b"},
	} {
		root, rel := splitArtifactURI(in)
		assert.Equal(t, want, [2]string{root, rel}, in)
	}
}

func TestResolveDirectArtifactURINeedsNoServer(t *testing.T) {
	c := testClient(t, "http://127.0.0.1:1") // nothing listens: any request would fail
	r, err := c.ResolveURI(context.Background(), "mlflow-artifacts:/1/abc/artifacts/model")
	require.NoError(t, err)
	assert.Equal(t, ResolvedURI{Root: "mlflow-artifacts:/1/abc/artifacts", Path: "model"}, *r)
	assert.Equal(t, "mlflow-artifacts:/1/abc/artifacts/model", r.String())

	_, err = c.ResolveURI(context.Background(), "models:/clf/Prod")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
}

// fakeMLflow answers a few GET/POST endpoints with canned JSON.
func fakeMLflow(t *testing.T, routes map[string]func(r *http.Request) (int, any)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h, ok := routes[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>404 Not Found</html>"))
			return
		}
		status, body := h(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestResolveStopsOnCyclicDownloadURIs(t *testing.T) {
	// A registry whose download URI points back at the model itself; no real
	// server does this, but a broken one must not send us into a loop.
	srv, calls := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/model-versions/get-download-uri": func(*http.Request) (int, any) {
			return 200, map[string]string{"artifact_uri": "models:/loop/1"}
		},
	})
	c := testClient(t, srv.URL)
	_, err := c.ResolveURI(context.Background(), "models:/loop/1")
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, err.Error(), "too many indirections")
	assert.LessOrEqual(t, calls.Load(), int32(maxURIHops+1))
}

func TestResolveRunOnServerWithoutLoggedModels(t *testing.T) {
	// An MLflow 2.x server has no logged-models endpoints (bare 404): runs:/
	// URIs must still resolve to the run's artifacts.
	srv, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/runs/get": func(r *http.Request) (int, any) {
			assert.Equal(t, testRunID, r.URL.Query().Get("run_id"))
			return 200, map[string]any{"run": map[string]any{"info": map[string]any{
				"run_id": testRunID, "experiment_id": "7", "artifact_uri": "mlflow-artifacts:/7/" + testRunID + "/artifacts"}}}
		},
	})
	c := testClient(t, srv.URL)
	r, err := c.ResolveURI(context.Background(), "runs:/"+testRunID+"/model/MLmodel")
	require.NoError(t, err)
	assert.Equal(t, ResolvedURI{Root: "mlflow-artifacts:/7/" + testRunID + "/artifacts/model", Path: "MLmodel", RunID: testRunID}, *r)
}

func TestResolveUsesRegistryURI(t *testing.T) {
	// Registry calls go to the registry server, tracking calls to the tracking server.
	tracking, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/runs/get": func(*http.Request) (int, any) {
			return 200, map[string]any{"run": map[string]any{"info": map[string]any{
				"run_id": testRunID, "experiment_id": "1", "artifact_uri": "mlflow-artifacts:/1/" + testRunID + "/artifacts"}}}
		},
		"/api/2.0/mlflow/logged-models/search": func(*http.Request) (int, any) { return 200, map[string]any{} },
	})
	reg, _ := fakeMLflow(t, map[string]func(*http.Request) (int, any){
		"/api/2.0/mlflow/registered-models/alias": func(r *http.Request) (int, any) {
			assert.Equal(t, "champion", r.URL.Query().Get("alias"))
			return 200, map[string]any{"model_version": map[string]any{"name": "clf", "version": "4"}}
		},
		"/api/2.0/mlflow/model-versions/get-download-uri": func(r *http.Request) (int, any) {
			assert.Equal(t, "4", r.URL.Query().Get("version"))
			return 200, map[string]string{"artifact_uri": "runs:/" + testRunID + "/model"}
		},
	})
	c := testClient(t, tracking.URL, WithRegistryURI(reg.URL))
	r, err := c.ResolveURI(context.Background(), "models:/clf@champion/MLmodel")
	require.NoError(t, err)
	assert.Equal(t, ResolvedURI{Root: "mlflow-artifacts:/1/" + testRunID + "/artifacts/model", Path: "MLmodel",
		ModelName: "clf", ModelVersion: "4", RunID: testRunID}, *r)
}
