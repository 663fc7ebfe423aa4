package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// ArtifactsService reads and writes artifacts through the tracking server's
// artifact proxy (/api/2.0/mlflow-artifacts, `mlflow server --serve-artifacts`,
// the default). Every method takes the artifact root of a run
// (Run.Info.ArtifactURI, e.g. "mlflow-artifacts:/1/<run_id>/artifacts") or of
// a logged model, and paths relative to it using "/" separators.
//
// Transfers stream: uploads are read from disk (or the caller's reader) as
// they are sent and downloads are written to a temporary file beside the
// destination, renamed into place only when complete. For transfers the
// client's timeout (WithTimeout) bounds a period without progress, not the
// whole transfer, so large files are not cut off.
type ArtifactsService service

// Multipart upload defaults (see WithMultipartUpload).
const (
	DefaultMultipartThreshold int64 = 100 << 20
	DefaultMultipartPartSize  int64 = 10 << 20
)

const (
	artifactsAPI = "/api/2.0/mlflow-artifacts"
	maxParts     = 10000 // S3's limit on parts per upload
	// transferWorkers bounds concurrent parts of one upload and concurrent
	// files of a directory upload or download.
	transferWorkers = 4
)

type multipartConfig struct {
	set                 bool
	threshold, partSize int64
}

// WithMultipartUpload sets when uploads use the proxy's multipart protocol
// (mpu/create, a PUT per part to the URLs it returns, mpu/complete): files of
// at least threshold bytes, in parts of partSize bytes (raised as needed to
// stay within 10,000 parts). threshold <= 0 disables multipart; partSize <= 0
// means DefaultMultipartPartSize. Servers whose artifact store has no
// multipart support answer NOT_IMPLEMENTED; the client then falls back to a
// single streamed PUT and skips the probe for the rest of its life.
func WithMultipartUpload(threshold, partSize int64) Option {
	return func(c *config) { c.multipart = multipartConfig{set: true, threshold: threshold, partSize: partSize} }
}

// artifactState is what this client learned about the server's artifact proxy.
type artifactState struct{ noMultipart atomic.Bool }

func (s *ArtifactsService) multipartSettings() (threshold, partSize int64) {
	m := s.c.cfg.multipart
	if !m.set {
		return DefaultMultipartThreshold, DefaultMultipartPartSize
	}
	if m.partSize <= 0 {
		m.partSize = DefaultMultipartPartSize
	}
	return m.threshold, m.partSize
}

// UploadFile uploads the local file to root/artifactPath/<base name of
// localPath>, like mlflow.log_artifact: artifactPath is the destination
// directory ("" for the root itself).
func (s *ArtifactsService) UploadFile(ctx context.Context, root, localPath, artifactPath string) error {
	rp, dir, err := locate(root, "artifact path", artifactPath)
	if err != nil {
		return err
	}
	return s.uploadFile(ctx, rp, dir, localPath)
}

func (s *ArtifactsService) uploadFile(ctx context.Context, rootPath, dir, localPath string) error {
	name := filepath.Base(localPath)
	if _, err := cleanArtifactPath("file name", name); err != nil {
		return err
	}
	st, err := os.Stat(localPath)
	if err != nil {
		return fmt.Errorf("mlflowclient: upload: %w", err)
	}
	if !st.Mode().IsRegular() {
		return &ValidationError{Field: "local path", Value: shorten(localPath), Reason: "is not a regular file"}
	}
	size := st.Size()
	src := uploadSource{
		size:  size,
		retry: true,
		// Opened anew for every attempt, so a retry re-sends from the start.
		open: func() (io.ReadCloser, error) {
			f, err := os.Open(localPath)
			if err != nil {
				return nil, err
			}
			// The limit keeps Content-Length true if the file grows meanwhile.
			return readCloser{io.LimitReader(f, size), f}, nil
		},
		parts: func() (io.ReaderAt, func(), error) {
			f, err := os.Open(localPath)
			if err != nil {
				return nil, nil, err
			}
			return f, func() { _ = f.Close() }, nil
		},
	}
	return s.upload(ctx, rootPath, dir, name, src)
}

// UploadDir uploads the files under localDir (recursively) to
// root/artifactPath/, like mlflow.log_artifacts. Empty directories are not
// represented in artifact stores and are skipped, as are symlinks to
// directories and non-regular files. Every name is checked before anything is
// sent.
func (s *ArtifactsService) UploadDir(ctx context.Context, root, localDir, artifactPath string) error {
	rp, dir, err := locate(root, "artifact path", artifactPath)
	if err != nil {
		return err
	}
	st, err := os.Stat(localDir)
	if err != nil {
		return fmt.Errorf("mlflowclient: upload dir: %w", err)
	}
	if !st.IsDir() {
		return &ValidationError{Field: "local dir", Value: shorten(localDir), Reason: "is not a directory"}
	}
	type job struct{ local, dir string }
	var jobs []job
	err = filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				s.c.cfg.logger.Warn("mlflowclient: upload dir: skipping symlink that is not to a regular file", "path", p)
				return nil
			}
		} else if !d.Type().IsRegular() {
			s.c.cfg.logger.Warn("mlflowclient: upload dir: skipping non-regular file", "path", p)
			return nil
		}
		rel, err := filepath.Rel(localDir, filepath.Dir(p))
		if err != nil {
			return err
		}
		sub, err := cleanArtifactPath("local file path", filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if _, err := cleanArtifactPath("file name", d.Name()); err != nil {
			return err
		}
		jobs = append(jobs, job{p, path.Join(dir, sub)})
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("mlflowclient: upload dir: %w", err)
	}
	return forEach(ctx, transferWorkers, len(jobs), func(ctx context.Context, i int) error {
		return s.uploadFile(ctx, rp, jobs[i].dir, jobs[i].local)
	})
}

// Put uploads one object to root/artifactFile from r. size is r's length, or
// -1 when unknown (the body is then sent chunked). Failed attempts are retried
// only when r is an io.Seeker (it is rewound to where it was); large uploads
// may use multipart when r is also an io.ReaderAt and size is known.
func (s *ArtifactsService) Put(ctx context.Context, root, artifactFile string, r io.Reader, size int64) error {
	rp, p, err := locate(root, "artifact file", artifactFile)
	if err != nil {
		return err
	}
	if p == "" {
		return &ValidationError{Field: "artifact file", Reason: "is required"}
	}
	if r == nil {
		return &ValidationError{Field: "reader", Reason: "is nil"}
	}
	if size < -1 {
		return &ValidationError{Field: "size", Value: strconv.FormatInt(size, 10), Reason: "must be >= 0, or -1 if unknown"}
	}
	src := uploadSource{size: size}
	rs, seekable := r.(io.Seeker)
	if !seekable {
		used := false
		src.open = func() (io.ReadCloser, error) {
			if used { // retries are off; only net/http's own replay can get here
				return nil, errors.New("reader cannot be rewound to send it again")
			}
			used = true
			return readCloser{limit(r, size), nopCloser{}}, nil
		}
	} else {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("mlflowclient: put: %w", err)
		}
		src.retry = true
		src.open = func() (io.ReadCloser, error) {
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return readCloser{limit(r, size), nopCloser{}}, nil
		}
		if at, ok := r.(io.ReaderAt); ok && size >= 0 {
			src.parts = func() (io.ReaderAt, func(), error) {
				return io.NewSectionReader(at, start, size), func() {}, nil
			}
		}
	}
	return s.upload(ctx, rp, path.Dir(p), path.Base(p), src)
}

func limit(r io.Reader, size int64) io.Reader {
	if size < 0 {
		return r
	}
	return io.LimitReader(r, size)
}

// uploadSource is what an upload reads: open gives the whole body for one
// attempt; parts, when set, gives random access for multipart uploads.
type uploadSource struct {
	size  int64
	retry bool
	open  func() (io.ReadCloser, error)
	parts func() (io.ReaderAt, func(), error)
}

// upload sends src to rootPath/dir/name, by multipart when it is large and
// the server supports it, else by one streamed PUT.
func (s *ArtifactsService) upload(ctx context.Context, rootPath, dir, name string, src uploadSource) error {
	if dir == "." {
		dir = ""
	}
	threshold, partSize := s.multipartSettings()
	if src.parts != nil && threshold > 0 && src.size >= threshold && !s.c.artifacts.noMultipart.Load() {
		err := s.multipartUpload(ctx, path.Join(rootPath, dir), name, src, partSize)
		if !errors.Is(err, errNoMultipart) {
			return err
		}
	}
	p := path.Join(rootPath, dir, name)
	policy := s.c.cfg.retry
	if !src.retry {
		policy.MaxRetries = 0
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	_, err := s.send(ctx, transfer{
		method: http.MethodPut,
		path:   artifactsAPI + "/artifacts/" + escapePath(p),
		header: http.Header{"Content-Type": {ctype}},
		auth:   true,
		body:   src.open,
		size:   src.size,
		policy: policy,
	})
	return err
}

// errNoMultipart: the server's artifact store has no multipart support.
var errNoMultipart = errors.New("multipart upload not supported by the server")

type mpuCredential struct {
	URL        string            `json:"url"`
	PartNumber flexInt           `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

type mpuPart struct {
	PartNumber int64  `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url,omitempty"`
}

// multipartUpload runs MLflow's proxy multipart protocol for dirPath/name:
// mpu/create returns an upload id and one presigned URL per part; each part is
// PUT there (retried on its own), then mpu/complete lists the parts' ETags.
// Any failure after create aborts the upload.
func (s *ArtifactsService) multipartUpload(ctx context.Context, dirPath, name string, src uploadSource, partSize int64) error {
	size := src.size
	if (size+partSize-1)/partSize > maxParts {
		partSize = (size + maxParts - 1) / maxParts
	}
	numParts := max((size+partSize-1)/partSize, 1)
	mpu := func(verb string) endpoint {
		return endpoint{method: http.MethodPost, path: artifactsAPI + "/mpu/" + verb + "/" + escapePath(dirPath)}
	}
	var created struct {
		UploadID    string          `json:"upload_id"`
		Credentials []mpuCredential `json:"credentials"`
	}
	// "path" is only used for its base name by the stores; never send the
	// caller's local path.
	in := map[string]any{"path": name, "num_parts": numParts}
	if err := s.c.call(ctx, mpu("create"), in, &created); err != nil {
		if IsNotImplemented(err) || ErrorCode(err) == CodeEndpointNotFound {
			s.c.artifacts.noMultipart.Store(true)
			s.c.cfg.logger.Debug("mlflowclient: server has no multipart upload; using single PUTs", "err", err)
			return errNoMultipart
		}
		return err
	}
	err := func() error {
		if int64(len(created.Credentials)) != numParts {
			return fmt.Errorf("mlflowclient: mpu/create for %s returned %d part URLs, want %d", path.Join(dirPath, name), len(created.Credentials), numParts)
		}
		at, done, err := src.parts()
		if err != nil {
			return fmt.Errorf("mlflowclient: upload: %w", err)
		}
		defer done()
		parts := make([]mpuPart, numParts)
		err = forEach(ctx, transferWorkers, int(numParts), func(ctx context.Context, i int) error {
			cr := created.Credentials[i]
			pn := int64(cr.PartNumber)
			if pn == 0 {
				pn = int64(i) + 1
			}
			off := int64(i) * partSize
			n := min(partSize, size-off)
			etag, err := s.putPart(ctx, cr, func() (io.ReadCloser, error) {
				return io.NopCloser(io.NewSectionReader(at, off, n)), nil
			}, n)
			if err != nil {
				return fmt.Errorf("part %d: %w", pn, err)
			}
			parts[i] = mpuPart{PartNumber: pn, ETag: etag, URL: cr.URL}
			return nil
		})
		if err != nil {
			return err
		}
		return s.c.call(ctx, mpu("complete"), map[string]any{"path": name, "upload_id": created.UploadID, "parts": parts}, nil)
	}()
	if err != nil {
		// Abort even when ctx was cancelled, so the store frees the parts.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.c.cfg.timeout)
		defer cancel()
		if aerr := s.c.call(actx, mpu("abort"), map[string]any{"path": name, "upload_id": created.UploadID}, nil); aerr != nil {
			s.c.cfg.logger.Warn("mlflowclient: aborting multipart upload failed", "path", path.Join(dirPath, name), "err", aerr)
		}
		return err
	}
	return nil
}

// putPart PUTs one part to its presigned URL and returns the ETag the store
// answered with. Our credentials go only to the tracking server itself, never
// to a storage service's presigned URL.
func (s *ArtifactsService) putPart(ctx context.Context, cr mpuCredential, body func() (io.ReadCloser, error), n int64) (string, error) {
	u, err := s.c.tracking.Parse(cr.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("mlflowclient: mpu/create returned an unusable part URL")
	}
	h := http.Header{}
	for k, v := range cr.Headers {
		h.Set(k, v)
	}
	var etag string
	_, err = s.send(ctx, transfer{
		method: http.MethodPut,
		url:    u.String(),
		path:   u.Path, // never the query: it carries the signature
		header: h,
		auth:   u.Scheme == s.c.tracking.Scheme && u.Host == s.c.tracking.Host,
		body:   body,
		size:   n,
		policy: s.c.cfg.retry,
		onOK: func(resp *http.Response) error {
			etag = resp.Header.Get("ETag")
			return nil
		},
	})
	return etag, err
}

// flexInt decodes an int64 sent as a JSON number or string (proto3 JSON).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	*f = flexInt(v)
	return err
}

// List lists one level of root/artifactPath. Paths in the result are relative
// to root, as MLflow's list_artifacts returns them; a path naming a file
// lists as empty.
func (s *ArtifactsService) List(ctx context.Context, root, artifactPath string) ([]FileInfo, error) {
	rp, ap, err := locate(root, "artifact path", artifactPath)
	if err != nil {
		return nil, err
	}
	return s.list(ctx, rp, ap)
}

func (s *ArtifactsService) list(ctx context.Context, rootPath, ap string) ([]FileInfo, error) {
	var out struct {
		Files []FileInfo `json:"files"`
	}
	q := url.Values{"path": {path.Join(rootPath, ap)}}
	if err := s.c.call(ctx, endpoint{method: http.MethodGet, path: artifactsAPI + "/artifacts"}, q, &out); err != nil {
		return nil, err
	}
	files := out.Files[:0]
	for _, f := range out.Files {
		// The proxy answers base names; anything else could steer a
		// directory download outside its destination.
		if f.Path == "" || f.Path == "." || f.Path == ".." || strings.ContainsRune(f.Path, '/') ||
			strings.ContainsRune(f.Path, filepath.Separator) {
			return nil, fmt.Errorf("mlflowclient: listing %q: server returned unsafe entry name %q", ap, f.Path)
		}
		f.Path = path.Join(ap, f.Path)
		files = append(files, f)
	}
	// Like the official client: some stores list a file path as the file itself.
	if len(files) == 1 && !files[0].IsDir && ap != "" && files[0].Path == path.Join(ap, path.Base(ap)) {
		return []FileInfo{}, nil
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Open streams one file; the caller must close it. Only establishing the
// response is retried; reading is bounded by ctx, not by the client timeout.
func (s *ArtifactsService) Open(ctx context.Context, root, artifactFile string) (io.ReadCloser, error) {
	rp, p, err := locate(root, "artifact file", artifactFile)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, &ValidationError{Field: "artifact file", Reason: "is required"}
	}
	resp, err := s.send(ctx, transfer{
		method: http.MethodGet,
		path:   artifactsAPI + "/artifacts/" + escapePath(path.Join(rp, p)),
		auth:   true,
		policy: s.c.cfg.retry,
		keep:   true,
	})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Download downloads root/artifactPath, a file or a directory (recursively),
// to localDir/artifactPath and returns that local path, like
// mlflow.artifacts.download_artifacts. artifactPath "" downloads the whole
// root into localDir. Each file appears only once completely written.
func (s *ArtifactsService) Download(ctx context.Context, root, artifactPath, localDir string) (string, error) {
	rp, ap, err := locate(root, "artifact path", artifactPath)
	if err != nil {
		return "", err
	}
	if localDir == "" {
		return "", &ValidationError{Field: "local dir", Reason: "is required"}
	}
	dest := filepath.Join(localDir, filepath.FromSlash(ap))
	isDir := ap == ""
	if !isDir {
		entries, err := s.list(ctx, rp, ap)
		if err != nil {
			return "", err
		}
		isDir = len(entries) > 0
	}
	if !isDir {
		return dest, s.downloadFile(ctx, rp, ap, dest)
	}
	// Collect the tree first (one level per call), then fetch files concurrently.
	var files []string
	dirs := []string{ap}
	for len(dirs) > 0 {
		d := dirs[0]
		dirs = dirs[1:]
		entries, err := s.list(ctx, rp, d)
		if err != nil {
			return "", err
		}
		for _, e := range entries {
			if e.IsDir {
				dirs = append(dirs, e.Path)
			} else {
				files = append(files, e.Path)
			}
		}
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", fmt.Errorf("mlflowclient: download: %w", err)
	}
	err = forEach(ctx, transferWorkers, len(files), func(ctx context.Context, i int) error {
		rel := filepath.FromSlash(files[i])
		if !filepath.IsLocal(rel) { // list already rejects such names; belt and braces
			return fmt.Errorf("mlflowclient: download: artifact %q would land outside %s", files[i], localDir)
		}
		return s.downloadFile(ctx, rp, files[i], filepath.Join(localDir, rel))
	})
	if err != nil {
		return "", err
	}
	return dest, nil
}

// downloadFile streams rootPath/ap into a temporary file beside dest and
// renames it into place; a failed download leaves nothing behind. A retry
// starts the file over.
func (s *ArtifactsService) downloadFile(ctx context.Context, rootPath, ap, dest string) (err error) {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mlflowclient: download: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".*.part")
	if err != nil {
		return fmt.Errorf("mlflowclient: download: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	_, err = s.send(ctx, transfer{
		method: http.MethodGet,
		path:   artifactsAPI + "/artifacts/" + escapePath(path.Join(rootPath, ap)),
		auth:   true,
		policy: s.c.cfg.retry,
		onOK: func(resp *http.Response) error {
			if err := tmp.Truncate(0); err != nil {
				return err
			}
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return err
			}
			_, err := io.Copy(tmp, resp.Body)
			return err
		},
	})
	if err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("mlflowclient: download: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("mlflowclient: download: %w", err)
	}
	if err = os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("mlflowclient: download: %w", err)
	}
	return nil
}

// Delete deletes root/artifactPath, a file or a directory with its contents.
// The proxy answers success for a path that does not exist. artifactPath is
// required: deleting a whole root is deliberately not offered here.
func (s *ArtifactsService) Delete(ctx context.Context, root, artifactPath string) error {
	rp, ap, err := locate(root, "artifact path", artifactPath)
	if err != nil {
		return err
	}
	if ap == "" {
		return &ValidationError{Field: "artifact path", Reason: "is required (deleting a whole artifact root is not supported)"}
	}
	e := endpoint{method: http.MethodDelete, path: artifactsAPI + "/artifacts/" + escapePath(path.Join(rp, ap))}
	return s.c.call(ctx, e, nil, nil)
}

// LogArtifact uploads a local file to the run's artifacts under artifactPath
// (a directory, "" for the root), like mlflow.log_artifact.
func (s *RunsService) LogArtifact(ctx context.Context, runID, localPath, artifactPath string) error {
	root, err := s.artifactURI(ctx, runID)
	if err != nil {
		return err
	}
	return s.c.Artifacts.UploadFile(ctx, root, localPath, artifactPath)
}

// LogArtifacts uploads the contents of localDir to the run's artifacts under
// artifactPath, like mlflow.log_artifacts.
func (s *RunsService) LogArtifacts(ctx context.Context, runID, localDir, artifactPath string) error {
	root, err := s.artifactURI(ctx, runID)
	if err != nil {
		return err
	}
	return s.c.Artifacts.UploadDir(ctx, root, localDir, artifactPath)
}

func (s *RunsService) artifactURI(ctx context.Context, runID string) (string, error) {
	if err := validateRunID(runID); err != nil {
		return "", err
	}
	r, err := s.Get(ctx, runID)
	if err != nil {
		return "", err
	}
	return r.Info.ArtifactURI, nil
}

// schemePattern is RFC 3986's scheme syntax.
var schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*$`)

// locate validates an artifact root and a path under it (field names the
// path in errors), returning the root's proxy path and the cleaned path.
func locate(root, field, p string) (rootPath, clean string, err error) {
	if rootPath, err = proxyRoot(root); err != nil {
		return "", "", err
	}
	if clean, err = cleanArtifactPath(field, p); err != nil {
		return "", "", err
	}
	return rootPath, clean, nil
}

// proxyRoot turns an artifact root into its path below the proxy:
// "mlflow-artifacts:/1/abc/artifacts", "mlflow-artifacts://host:port/1/abc/artifacts"
// and "http(s)://host/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts" all
// give "1/abc/artifacts"; a plain relative path is taken as is. The path is
// always sent to this client's tracking server.
func proxyRoot(root string) (string, error) {
	if strings.TrimSpace(root) == "" {
		return "", &ValidationError{Field: "artifact root", Reason: "is required"}
	}
	p := root
	if i := strings.IndexByte(root, ':'); i > 0 && schemePattern.MatchString(root[:i]) {
		scheme, rest := strings.ToLower(root[:i]), root[i+1:]
		switch scheme {
		case "mlflow-artifacts":
			if strings.HasPrefix(rest, "//") { // authority form: drop host:port
				rest = rest[2:]
				if j := strings.IndexByte(rest, '/'); j >= 0 {
					rest = rest[j:]
				} else {
					rest = ""
				}
			}
		case "http", "https":
			const marker = artifactsAPI + "/artifacts"
			j := strings.Index(rest, marker)
			if j < 0 {
				return "", &ValidationError{Field: "artifact root", Value: shorten(root),
					Reason: "is an http(s) URI that is not an MLflow artifact proxy (" + marker + ") location"}
			}
			rest = rest[j+len(marker):]
		default:
			return "", &ValidationError{Field: "artifact root", Value: shorten(root), Reason: fmt.Sprintf(
				"scheme %q is not proxied by the tracking server (only mlflow-artifacts: roots are; direct client-side access to %s: stores is not supported)", scheme, scheme)}
		}
		dec, err := url.PathUnescape(rest)
		if err != nil {
			return "", &ValidationError{Field: "artifact root", Value: shorten(root), Reason: "has a bad %-escape"}
		}
		p = strings.Trim(dec, "/")
		if p == "" {
			return "", &ValidationError{Field: "artifact root", Value: shorten(root), Reason: "has no path"}
		}
	} else if strings.HasPrefix(root, "/") {
		return "", &ValidationError{Field: "artifact root", Value: shorten(root),
			Reason: "is a local path; the tracking server does not proxy file stores (use the run's mlflow-artifacts: URI)"}
	}
	c, err := cleanArtifactPath("artifact root", p)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", &ValidationError{Field: "artifact root", Value: shorten(root), Reason: "has no path"}
	}
	return c, nil
}

// cleanArtifactPath checks a relative artifact path the way the server's
// validate_path_is_safe does (no "..", not absolute, no "#"), and also
// rejects what would make the server store a different name than the caller
// meant: empty and "." segments, control characters and %XX sequences. A trailing "/" is dropped; "" and
// "." mean the root.
func cleanArtifactPath(field, p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" || p == "." {
		return "", nil
	}
	bad := func(reason string) error { return &ValidationError{Field: field, Value: shorten(p), Reason: reason} }
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) ||
		len(p) >= 3 && p[1] == ':' && (p[2] == '/' || p[2] == '\\') && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z') {
		return "", bad("must be relative, not absolute")
	}
	if strings.Contains(p, "#") {
		return "", bad(`must not contain "#" (the server rejects it)`)
	}
	if percentEscape.MatchString(p) {
		return "", bad(`must not contain %XX sequences (the server URL-decodes paths, so it would store another name)`)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", bad("must not contain control characters")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "..":
			return "", bad(`must not contain ".." segments`)
		case "", ".":
			return "", bad(`must not contain empty or "." segments`)
		}
	}
	return p, nil
}

var percentEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// escapePath escapes each segment of a "/"-separated path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
