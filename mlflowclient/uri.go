package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// URIKind says which form a model or artifact URI has.
type URIKind string

const (
	URIModelVersion URIKind = "model-version" // models:/<name>/<version>
	URIModelStage   URIKind = "model-stage"   // models:/<name>/<stage>: latest version in the stage
	URIModelLatest  URIKind = "model-latest"  // models:/<name>/latest: latest version of any stage
	URIModelAlias   URIKind = "model-alias"   // models:/<name>@<alias>
	URILoggedModel  URIKind = "logged-model"  // models:/<model_id>
	URIRun          URIKind = "run"           // runs:/<run_id>/<path>
	URIArtifact     URIKind = "artifact"      // mlflow-artifacts:/<path>, or an http(s) artifact proxy URL
)

// URI is a parsed models:/, runs:/ or mlflow-artifacts:/ URI. Only the
// fields of its Kind are set.
type URI struct {
	Kind     URIKind
	Name     string // registered model name (model kinds except URILoggedModel)
	Version  string // URIModelVersion
	Stage    Stage  // URIModelStage, canonical case
	Alias    string // URIModelAlias
	ModelID  string // URILoggedModel
	RunID    string // URIRun
	Path     string // artifact path below the model or run ("" for all of it)
	Artifact string // URIArtifact: the URI itself
}

// ParseURI parses the URIs the official client accepts for models and run
// artifacts, following its parser (mlflow/store/artifact/utils/models.py and
// ModelsArtifactRepository.split_models_uri):
//
//	models:/<name>/<version>[/<path>]     models:/<name>/<stage>[/<path>]
//	models:/<name>/latest[/<path>]        models:/<name>@<alias>[/<path>]
//	models:/<model_id>                    runs:/<run_id>[/<path>]
//	mlflow-artifacts:/<path>              http(s)://<host>/api/2.0/mlflow-artifacts/artifacts/<path>
//
// A registered model name cannot contain "/" or ":" but may contain spaces;
// a single segment without "@" is a logged model id, as in the official
// client. Host-qualified forms (models://profile@databricks/…) are not
// supported. Errors are *ValidationError.
func ParseURI(s string) (*URI, error) {
	bad := func(reason string) error {
		return &ValidationError{Field: "URI", Value: shorten(s), Reason: reason}
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, bad("has no scheme (want models:/, runs:/ or mlflow-artifacts:/)")
	}
	switch strings.ToLower(scheme) {
	case "models", "runs":
		if strings.HasPrefix(rest, "//") {
			return nil, bad("host-qualified " + scheme + ":// URIs are not supported; use " + scheme + ":/…")
		}
		if !strings.HasPrefix(rest, "/") || strings.Trim(rest, "/") == "" {
			return nil, bad("must look like " + scheme + ":/<…>")
		}
		if strings.ContainsAny(rest, "?#") {
			return nil, bad("cannot have a query or fragment")
		}
		if strings.ToLower(scheme) == "runs" {
			return parseRunsURI(strings.Trim(rest, "/"), bad)
		}
		return parseModelsURI(strings.Trim(rest, "/"), bad)
	case "mlflow-artifacts", "http", "https":
		// The same roots ArtifactsService accepts: served by the tracking server's proxy.
		if _, err := proxyRoot(s); err != nil {
			return nil, bad(err.(*ValidationError).Reason)
		}
		return &URI{Kind: URIArtifact, Artifact: s}, nil
	}
	return nil, bad(fmt.Sprintf("scheme %q is not supported (want models:/, runs:/ or mlflow-artifacts:/)", scheme))
}

const modelsURIForms = "want models:/<name>/<version|stage|latest>, models:/<name>@<alias> or models:/<model_id>"

func parseModelsURI(p string, bad func(string) error) (*URI, error) {
	segs := strings.SplitN(p, "/", 3)
	first := segs[0]
	if strings.TrimSpace(first) == "" {
		return nil, bad("has an empty model name (" + modelsURIForms + ")")
	}
	var rel string
	if i := strings.LastIndex(first, "@"); i >= 0 {
		// models:/<name>@<alias>[/<path>]: the path starts right after the alias.
		name, alias := first[:i], first[i+1:]
		if strings.TrimSpace(name) == "" || strings.TrimSpace(alias) == "" {
			return nil, bad("alias URIs look like models:/<name>@<alias>")
		}
		if err := validateAlias(alias, false); err != nil {
			return nil, bad(err.(*ValidationError).Reason + " (alias " + strconv.Quote(alias) + ")")
		}
		rel = strings.Join(segs[1:], "/")
		if err := checkArtifactPath(rel, bad); err != nil {
			return nil, err
		}
		return &URI{Kind: URIModelAlias, Name: name, Alias: alias, Path: rel}, nil
	}
	if len(segs) == 1 {
		return &URI{Kind: URILoggedModel, ModelID: first}, nil
	}
	suffix := segs[1]
	if strings.TrimSpace(suffix) == "" {
		return nil, bad("has an empty version or stage (" + modelsURIForms + ")")
	}
	if len(segs) == 3 {
		rel = segs[2]
		if err := checkArtifactPath(rel, bad); err != nil {
			return nil, err
		}
	}
	u := &URI{Name: first, Path: rel}
	switch {
	case isDigits(suffix):
		u.Kind, u.Version = URIModelVersion, suffix
	case strings.EqualFold(suffix, "latest"):
		u.Kind = URIModelLatest
	default:
		st, err := ParseStage(suffix)
		if err != nil {
			return nil, bad(strconv.Quote(suffix) + " is neither a version, a stage (None, Staging, Production, Archived) nor \"latest\"")
		}
		u.Kind, u.Stage = URIModelStage, st
	}
	return u, nil
}

func parseRunsURI(p string, bad func(string) error) (*URI, error) {
	runID, rel, _ := strings.Cut(p, "/")
	if err := validateRunID(runID); err != nil {
		return nil, bad("run id " + strconv.Quote(shorten(runID)) + " " + err.(*ValidationError).Reason)
	}
	if err := checkArtifactPath(rel, bad); err != nil {
		return nil, err
	}
	return &URI{Kind: URIRun, RunID: runID, Path: rel}, nil
}

// checkArtifactPath rejects paths the server would refuse anyway (.., empty segments).
func checkArtifactPath(rel string, bad func(string) error) error {
	if rel == "" {
		return nil
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("artifact path " + strconv.Quote(rel) + " has an empty, '.' or '..' segment")
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// String returns the URI in canonical form.
func (u *URI) String() string {
	var s string
	switch u.Kind {
	case URIArtifact:
		return u.Artifact
	case URILoggedModel:
		return "models:/" + u.ModelID
	case URIRun:
		s = "runs:/" + u.RunID
	case URIModelVersion:
		s = "models:/" + u.Name + "/" + u.Version
	case URIModelStage:
		s = "models:/" + u.Name + "/" + string(u.Stage)
	case URIModelLatest:
		s = "models:/" + u.Name + "/latest"
	case URIModelAlias:
		s = "models:/" + u.Name + "@" + u.Alias
	}
	if u.Path != "" {
		s += "/" + u.Path
	}
	return s
}

// ResolvedURI is where a URI's files are: Path below the artifact root Root,
// which the tracking server's artifact proxy serves (see ArtifactsService).
type ResolvedURI struct {
	Root string // e.g. mlflow-artifacts:/1/models/m-…/artifacts
	Path string // "" for everything under Root

	// What resolution went through, when it did.
	ModelName    string
	ModelVersion string
	ModelID      string
	RunID        string

	// localDir is where DownloadURI puts Path below its local directory: a
	// run's logged model lands in <dir>/<model name>, as with the official client.
	localDir string
}

// String returns Root joined with Path.
func (r *ResolvedURI) String() string {
	if r.Path == "" {
		return r.Root
	}
	return strings.TrimRight(r.Root, "/") + "/" + r.Path
}

// maxURIHops bounds indirections (models:/ → runs:/ or models:/m-… → artifacts).
const maxURIHops = 4

// ResolveURI turns a models:/, runs:/ or mlflow-artifacts:/ URI into an
// artifact root and path, as the official client's ModelsArtifactRepository
// and RunsArtifactRepository do:
//
//   - models:/<name>/<version> goes through the version's download URI
//     (GetDownloadURI), which may itself be a runs:/ or models:/<model_id> URI;
//   - a stage or "latest" picks the highest version among GetLatestVersions;
//   - an alias goes through GetByAlias;
//   - models:/<model_id> is the logged model's artifact location;
//   - runs:/<run_id>/a/b is root <run artifact URI>/a, path b, except that, as
//     in MLflow 3, when the first path segment names a logged model produced
//     by the run, the rest of the path is below that model's artifact location;
//   - mlflow-artifacts:/a/b is returned as root mlflow-artifacts:/a, path b.
//
// Root and Path split where the official client splits them, so that
// DownloadURI lays files out as its download_artifacts does.
//
// A stage or "latest" with no version yields an *APIError with code
// RESOURCE_DOES_NOT_EXIST (IsNotFound). A location the proxy cannot serve
// (s3://, a local path...) yields a *ValidationError naming it.
func (c *Client) ResolveURI(ctx context.Context, uri string) (*ResolvedURI, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Kind == URIArtifact {
		root, rel := splitArtifactURI(u.Artifact)
		return &ResolvedURI{Root: root, Path: rel}, nil
	}
	r := &ResolvedURI{}
	if err := c.resolve(ctx, u, r, 0); err != nil {
		return nil, fmt.Errorf("resolving %s: %w", uri, err)
	}
	return r, nil
}

// splitArtifactURI splits off the last path element, as the official client
// does for plain artifact URIs (so downloading one yields <dir>/<basename>),
// unless the rest would not name an artifact location any more.
func splitArtifactURI(s string) (root, rel string) {
	s = strings.TrimRight(s, "/")
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return s, ""
	}
	if _, err := proxyRoot(s[:i]); err != nil {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func (c *Client) resolve(ctx context.Context, u *URI, r *ResolvedURI, hops int) error {
	if hops > maxURIHops {
		return &ValidationError{Field: "URI", Value: shorten(u.String()), Reason: "too many indirections"}
	}
	reg := c.Registry
	switch u.Kind {
	case URIArtifact:
		return setRoot(r, u.Artifact, u.Path)
	case URILoggedModel:
		m, err := c.LoggedModels.Get(ctx, u.ModelID)
		if err != nil {
			return err
		}
		r.ModelID = m.Info.ModelID
		if m.Info.ArtifactURI == "" {
			return fmt.Errorf("logged model %s has no artifact location", u.ModelID)
		}
		return c.follow(ctx, m.Info.ArtifactURI, u.Path, r, hops)
	case URIRun:
		// As for plain artifact URIs, the last element is what gets
		// downloaded: runs:/<id>/a/b lands in <dir>/b.
		sub, rel := path.Split(u.Path)
		return c.resolveRun(ctx, u.RunID, strings.TrimSuffix(sub, "/"), rel, r)
	case URIModelAlias:
		mv, err := reg.GetByAlias(ctx, u.Name, u.Alias)
		if err != nil {
			return err
		}
		u = &URI{Kind: URIModelVersion, Name: u.Name, Version: mv.Version, Path: u.Path}
	case URIModelStage, URIModelLatest:
		var stages []Stage
		if u.Kind == URIModelStage {
			stages = []Stage{u.Stage}
		}
		latest, err := reg.GetLatestVersions(ctx, u.Name, stages...)
		if err != nil {
			return err
		}
		best := int64(-1)
		for _, mv := range latest {
			if n, err := strconv.ParseInt(mv.Version, 10, 64); err == nil && n > best {
				best = n
			}
		}
		if best < 0 {
			where := ""
			if u.Kind == URIModelStage {
				where = " in stage " + string(u.Stage)
			}
			return &APIError{StatusCode: http.StatusNotFound, Code: CodeResourceDoesNotExist,
				Method: http.MethodPost, Path: "/api/2.0/mlflow/registered-models/get-latest-versions",
				Message: fmt.Sprintf("registered model %q has no version%s", u.Name, where)}
		}
		u = &URI{Kind: URIModelVersion, Name: u.Name, Version: strconv.FormatInt(best, 10), Path: u.Path}
	}
	// URIModelVersion, directly or from the cases above.
	r.ModelName, r.ModelVersion = u.Name, u.Version
	loc, err := reg.GetDownloadURI(ctx, u.Name, u.Version)
	if err != nil {
		return err
	}
	return c.follow(ctx, loc, u.Path, r, hops)
}

// follow resolves a location a server handed back (a download URI, an
// artifact URI) as a root, with rel below it.
func (c *Client) follow(ctx context.Context, loc, rel string, r *ResolvedURI, hops int) error {
	scheme, _, _ := strings.Cut(loc, ":")
	switch strings.ToLower(scheme) {
	case "models", "runs":
		next, err := ParseURI(loc)
		if err != nil {
			return err
		}
		if next.Kind == URIRun {
			return c.resolveRun(ctx, next.RunID, next.Path, rel, r)
		}
		next.Path = joinRel(next.Path, rel)
		return c.resolve(ctx, next, r, hops+1)
	}
	return setRoot(r, loc, rel)
}

func setRoot(r *ResolvedURI, root, rel string) error {
	if _, err := proxyRoot(root); err != nil {
		reason := err.Error()
		var ve *ValidationError
		if errors.As(err, &ve) {
			reason = ve.Reason
		}
		return &ValidationError{Field: "artifact location", Value: root,
			Reason: "is not served by the tracking server's artifact proxy (the server must run with --serve-artifacts): " + reason}
	}
	r.Root, r.Path = strings.TrimRight(root, "/"), rel
	return nil
}

func joinRel(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return strings.TrimRight(a, "/") + "/" + b
}

// resolveRun resolves rel below the root runs:/<run_id>/<sub>.
func (c *Client) resolveRun(ctx context.Context, runID, sub, rel string, r *ResolvedURI) error {
	run, err := c.Runs.Get(ctx, runID)
	if err != nil {
		return err
	}
	r.RunID = run.Info.RunID
	if full := joinRel(sub, rel); full != "" {
		// MLflow 3 stores a model logged by a run under the logged model's own
		// location; runs:/<run_id>/<model name>/… still reaches it, and the
		// official client downloads it to <dir>/<model name>/….
		name, rest, _ := strings.Cut(full, "/")
		m, err := c.runLoggedModel(ctx, run, name)
		if err != nil {
			return err
		}
		if m != nil {
			r.ModelID, r.localDir = m.Info.ModelID, name
			return setRoot(r, m.Info.ArtifactURI, rest)
		}
	}
	return setRoot(r, joinRel(strings.TrimRight(run.Info.ArtifactURI, "/"), sub), rel)
}

// runLoggedModel finds the logged model called name that run produced, or nil.
func (c *Client) runLoggedModel(ctx context.Context, run *Run, name string) (*LoggedModel, error) {
	if strings.ContainsAny(name, `/:.%"'`) { // not a valid logged model name
		return nil, nil
	}
	opts := SearchLoggedModelsOptions{ExperimentIDs: []string{run.Info.ExperimentID}, Filter: "name = '" + name + "'"}
	for m, err := range c.LoggedModels.All(ctx, opts) {
		if err != nil {
			if IsNotFound(err) || IsNotImplemented(err) { // a server without logged models
				return nil, nil
			}
			return nil, err
		}
		if m.Info.SourceRunID == run.Info.RunID && m.Info.ArtifactURI != "" {
			return m, nil
		}
	}
	return nil, nil
}

// DownloadURI downloads what a models:/, runs:/ or mlflow-artifacts:/ URI
// names (file or directory, recursively) below localDir and returns the local
// path, with the files where the official client's download_artifacts puts
// them: localDir itself for a whole model or run, localDir/<path> for
// models:/<name>/<version>/<path>, localDir/<basename> for runs:/ and
// artifact URIs, and localDir/<model name>/… for a run's logged model.
func (c *Client) DownloadURI(ctx context.Context, uri, localDir string) (string, error) {
	if localDir == "" {
		return "", &ValidationError{Field: "local dir", Reason: "is required"}
	}
	r, err := c.ResolveURI(ctx, uri)
	if err != nil {
		return "", err
	}
	return c.Artifacts.Download(ctx, r.Root, r.Path, filepath.Join(localDir, filepath.FromSlash(r.localDir)))
}

// OpenURI opens the single file a URI names, e.g. models:/clf@champion/MLmodel.
func (c *Client) OpenURI(ctx context.Context, uri string) (io.ReadCloser, error) {
	r, err := c.ResolveURI(ctx, uri)
	if err != nil {
		return nil, err
	}
	if r.Path == "" {
		return nil, &ValidationError{Field: "URI", Value: shorten(uri), Reason: "names a whole model or run, not a file"}
	}
	return c.Artifacts.Open(ctx, r.Root, r.Path)
}
