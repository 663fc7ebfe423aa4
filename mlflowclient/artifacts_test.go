package mlflowclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testRoot = "mlflow-artifacts:/1/0123abcd/artifacts"

// fakeStore is an in-memory artifact proxy plus, optionally, an S3-like
// presigned part store on a separate host.
type fakeStore struct {
	t  *testing.T
	mu sync.Mutex

	files    map[string][]byte // proxy path -> content
	requests []string          // "METHOD escaped-path"
	auth     []string          // Authorization headers seen by the proxy

	// putHook, when set, may answer a PUT to the proxy itself (return true).
	putHook func(w http.ResponseWriter, r *http.Request, n int) bool
	puts    int

	multipart  bool // answer mpu/* (else 501 NOT_IMPLEMENTED)
	creates    int
	completes  int
	aborts     []string // upload ids
	storage    *httptest.Server
	parts      map[string]map[int64][]byte // upload id -> part number -> data
	partHook   func(w http.ResponseWriter, r *http.Request, n int) bool
	partPuts   int
	partAuth   []string
	partHeader []string
}

func newFakeStore(t *testing.T) (*fakeStore, *httptest.Server) {
	f := &fakeStore{t: t, files: map[string][]byte{}, parts: map[string]map[int64][]byte{}}
	f.storage = httptest.NewServer(http.HandlerFunc(f.servePart))
	t.Cleanup(f.storage.Close)
	srv := httptest.NewServer(http.HandlerFunc(f.serveProxy))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeStore) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
}

func (f *fakeStore) serveProxy(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	const art = "/api/2.0/mlflow-artifacts/artifacts"
	const mpu = "/api/2.0/mlflow-artifacts/mpu/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == art:
		f.list(w, r.URL.Query().Get("path"))
	case strings.HasPrefix(r.URL.Path, art+"/"):
		p := strings.TrimPrefix(r.URL.Path, art+"/")
		switch r.Method {
		case http.MethodPut:
			f.mu.Lock()
			f.puts++
			n := f.puts
			hook := f.putHook
			f.mu.Unlock()
			if hook != nil && hook(w, r, n) {
				return
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.files[p] = b
			f.mu.Unlock()
			fmt.Fprint(w, "{}")
		case http.MethodGet:
			f.mu.Lock()
			b, ok := f.files[p]
			f.mu.Unlock()
			if !ok {
				f.fail(w, 404, CodeResourceDoesNotExist, "No such artifact: "+p)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			_, _ = w.Write(b)
		case http.MethodDelete:
			f.mu.Lock()
			for k := range f.files {
				if k == p || strings.HasPrefix(k, p+"/") {
					delete(f.files, k)
				}
			}
			f.mu.Unlock()
			fmt.Fprint(w, "{}")
		}
	case strings.HasPrefix(r.URL.Path, mpu):
		verb, dir, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, mpu), "/")
		if !f.multipart {
			f.mu.Lock()
			f.creates++
			f.mu.Unlock()
			f.fail(w, 501, CodeNotImplemented, "Multipart upload is not supported for the current artifact repository")
			return
		}
		var in struct {
			Path     string    `json:"path"`
			NumParts int64     `json:"num_parts"`
			UploadID string    `json:"upload_id"`
			Parts    []mpuPart `json:"parts"`
		}
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(&in))
		f.mu.Lock()
		defer f.mu.Unlock()
		switch verb {
		case "create":
			f.creates++
			id := fmt.Sprintf("up-%d", f.creates)
			f.parts[id] = map[int64][]byte{}
			var creds []map[string]any
			for i := int64(1); i <= in.NumParts; i++ {
				creds = append(creds, map[string]any{
					"url":         fmt.Sprintf("%s/bucket/%s/%s?partNumber=%d&uploadId=%s&X-Amz-Signature=secret", f.storage.URL, dir, in.Path, i, id),
					"part_number": i,
					"headers":     map[string]string{"X-Test-Part": fmt.Sprint(i)},
				})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"upload_id": id, "credentials": creds})
		case "complete":
			f.completes++
			var all []byte
			for i, p := range in.Parts {
				data, ok := f.parts[in.UploadID][p.PartNumber]
				if !ok || p.PartNumber != int64(i+1) || p.ETag != fmt.Sprintf(`"etag-%d-%d"`, p.PartNumber, len(data)) {
					f.fail(w, 400, CodeInvalidParameterValue, fmt.Sprintf("bad part %+v", p))
					return
				}
				all = append(all, data...)
			}
			f.files[dir+"/"+in.Path] = all
			fmt.Fprint(w, "{}")
		case "abort":
			f.aborts = append(f.aborts, in.UploadID)
			fmt.Fprint(w, "{}")
		}
	default:
		f.fail(w, 404, CodeEndpointNotFound, "no route")
	}
}

func (f *fakeStore) list(w http.ResponseWriter, dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]FileInfo{}
	for k, b := range f.files {
		rest, ok := strings.CutPrefix(k, dir+"/")
		if !ok {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		fi := FileInfo{Path: name, IsDir: isDir}
		if !isDir {
			fi.FileSize = int64(len(b))
		}
		seen[name] = fi
	}
	out := []FileInfo{}
	for _, fi := range seen {
		out = append(out, fi)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"files": out})
}

func (f *fakeStore) servePart(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.partPuts++
	n := f.partPuts
	f.partAuth = append(f.partAuth, r.Header.Get("Authorization"))
	f.partHeader = append(f.partHeader, r.Header.Get("X-Test-Part"))
	hook := f.partHook
	f.mu.Unlock()
	if r.Method != http.MethodPut {
		w.WriteHeader(405)
		return
	}
	if hook != nil && hook(w, r, n) {
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var pn int64
	_, _ = fmt.Sscan(r.URL.Query().Get("partNumber"), &pn)
	id := r.URL.Query().Get("uploadId")
	f.mu.Lock()
	f.parts[id][pn] = b
	f.mu.Unlock()
	w.Header().Set("ETag", fmt.Sprintf(`"etag-%d-%d"`, pn, len(b)))
}

func (f *fakeStore) snapshot() (reqs []string, creates, completes int, aborts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...), f.creates, f.completes, append([]string(nil), f.aborts...)
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func TestProxyRoot(t *testing.T) {
	ok := map[string]string{
		"mlflow-artifacts:/1/abc/artifacts":                                     "1/abc/artifacts",
		"mlflow-artifacts:/1/models/m-123/artifacts/":                           "1/models/m-123/artifacts",
		"mlflow-artifacts://host:5000/1/abc/artifacts":                          "1/abc/artifacts",
		"MLFLOW-ARTIFACTS:/1/a%20b":                                             "1/a b",
		"http://srv:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts":    "1/abc/artifacts",
		"https://srv/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts": "1/abc/artifacts",
		"1/abc/artifacts": "1/abc/artifacts",
	}
	for in, want := range ok {
		got, err := proxyRoot(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	bad := map[string]string{
		"s3://bucket/1/abc/artifacts":     `scheme "s3" is not proxied`,
		"file:///tmp/mlruns/1/abc":        `scheme "file" is not proxied`,
		"gs://b/x":                        `scheme "gs" is not proxied`,
		"/tmp/mlruns/1/abc/artifacts":     "local path",
		"":                                "is required",
		"mlflow-artifacts:/":              "has no path",
		"mlflow-artifacts://host:5000":    "has no path",
		"mlflow-artifacts:/1/../2":        `".."`,
		"http://srv/some/other/place":     "not an MLflow artifact proxy",
		"mlflow-artifacts:/1/abc%zz":      "bad %-escape",
		"mlflow-artifacts:/1/a#b":         `"#"`,
		"mlflow-artifacts:/1//artifacts/": "empty",
	}
	for in, want := range bad {
		_, err := proxyRoot(in)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, in)
		assert.Equal(t, "artifact root", ve.Field, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestCleanArtifactPath(t *testing.T) {
	for in, want := range map[string]string{"": "", ".": "", "model/": "model", "a/b c/d.txt": "a/b c/d.txt", "a:b/c": "a:b/c"} {
		got, err := cleanArtifactPath("p", in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"..", "../x", "a/../b", "a/..", "/abs", `\abs`, "C:/x", `c:\x`, "a#b", "a//b", "./a", "a/./b", "a\nb", "a\x00b", "a%20b", "x/%2e%2e/y"} {
		_, err := cleanArtifactPath("p", in)
		var ve *ValidationError
		assert.ErrorAs(t, err, &ve, "%q must be rejected", in)
	}
}

// Nothing is sent for invalid roots or paths, and every method validates.
func TestArtifactValidationBeforeSending(t *testing.T) {
	f, srv := newFakeStore(t)
	c := testClient(t, srv.URL)
	ctx := context.Background()
	local := writeFile(t, t.TempDir(), "f.txt", []byte("x"))
	var ve *ValidationError
	checks := []error{
		c.Artifacts.UploadFile(ctx, testRoot, local, "../up"),
		c.Artifacts.UploadFile(ctx, "s3://bucket/x", local, ""),
		c.Artifacts.UploadDir(ctx, testRoot, filepath.Dir(local), "/abs"),
		c.Artifacts.Put(ctx, testRoot, "a/../../b", strings.NewReader("x"), 1),
		c.Artifacts.Put(ctx, testRoot, "", strings.NewReader("x"), 1),
		c.Artifacts.Delete(ctx, testRoot, ""),
		c.Artifacts.Delete(ctx, testRoot, "a/../.."),
	}
	_, err := c.Artifacts.List(ctx, testRoot, "../other-run")
	checks = append(checks, err)
	_, err = c.Artifacts.Open(ctx, testRoot, "/etc/passwd")
	checks = append(checks, err)
	_, err = c.Artifacts.Download(ctx, testRoot, "x/../../y", t.TempDir())
	checks = append(checks, err)
	_, err = c.Artifacts.Download(ctx, "file:///tmp/x", "y", t.TempDir())
	checks = append(checks, err)
	for i, err := range checks {
		assert.ErrorAs(t, err, &ve, "check %d", i)
	}
	reqs, _, _, _ := f.snapshot()
	assert.Empty(t, reqs)

	// A local file whose name the server would reject fails before sending.
	bad := writeFile(t, t.TempDir(), "a#b.txt", []byte("x"))
	require.ErrorAs(t, c.Artifacts.UploadFile(ctx, testRoot, bad, ""), &ve)
	require.ErrorAs(t, c.Artifacts.UploadDir(ctx, testRoot, filepath.Dir(bad), ""), &ve)
	reqs, _, _, _ = f.snapshot()
	assert.Empty(t, reqs)
}

func TestArtifactPathsEscapedPerSegment(t *testing.T) {
	f, srv := newFakeStore(t)
	c := testClient(t, srv.URL, WithToken("tok"))
	ctx := context.Background()
	local := writeFile(t, t.TempDir(), "a b%?;%z.txt", []byte("hello"))
	require.NoError(t, c.Artifacts.UploadFile(ctx, "mlflow-artifacts:/1/r%20x/artifacts", local, "sp ace/ü"))

	rc, err := c.Artifacts.Open(ctx, "mlflow-artifacts:/1/r%20x/artifacts", "sp ace/ü/a b%?;%z.txt")
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "hello", string(got))

	files, err := c.Artifacts.List(ctx, "mlflow-artifacts:/1/r%20x/artifacts", "sp ace/ü")
	require.NoError(t, err)
	assert.Equal(t, []FileInfo{{Path: "sp ace/ü/a b%?;%z.txt", FileSize: 5}}, files)

	require.NoError(t, c.Artifacts.Delete(ctx, "mlflow-artifacts:/1/r%20x/artifacts", "sp ace"))

	reqs, _, _, _ := f.snapshot()
	want := "/api/2.0/mlflow-artifacts/artifacts/1/r%20x/artifacts/sp%20ace/%C3%BC/a%20b%25%3F%3B%25z.txt"
	assert.Contains(t, reqs, "PUT "+want)
	assert.Contains(t, reqs, "GET "+want)
	assert.Contains(t, reqs, "DELETE /api/2.0/mlflow-artifacts/artifacts/1/r%20x/artifacts/sp%20ace")
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Empty(t, f.files)
	for _, a := range f.auth {
		assert.Equal(t, "Bearer tok", a)
	}
}

// A 503 on the first PUT is retried, and the retry sends the whole body again
// with the right Content-Length.
func TestUploadRetryResendsFullBody(t *testing.T) {
	f, srv := newFakeStore(t)
	content := randomBytes(t, 300_000)
	var lengths []int64
	f.putHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		f.mu.Lock()
		lengths = append(lengths, r.ContentLength)
		f.mu.Unlock()
		if n == 1 {
			// Consume part of the body, as a proxy that gives up midway would.
			_, _ = io.CopyN(io.Discard, r.Body, 100_000)
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	var retries atomic.Int32
	c := testClient(t, srv.URL, WithLogger(newCountingLogger(&retries)))
	local := writeFile(t, t.TempDir(), "big.bin", content)
	require.NoError(t, c.Artifacts.UploadFile(context.Background(), testRoot, local, "d"))
	assert.Equal(t, int32(1), retries.Load())
	assert.Equal(t, []int64{300_000, 300_000}, lengths)
	f.mu.Lock()
	assert.True(t, bytes.Equal(content, f.files["1/0123abcd/artifacts/d/big.bin"]))
	f.mu.Unlock()

	// Put from a seekable reader is rewound to where it started.
	f.puts = 0
	r := bytes.NewReader(append([]byte("skip"), content...))
	_, _ = r.Seek(4, io.SeekStart)
	require.NoError(t, c.Artifacts.Put(context.Background(), testRoot, "p/put.bin", r, int64(len(content))))
	f.mu.Lock()
	assert.True(t, bytes.Equal(content, f.files["1/0123abcd/artifacts/p/put.bin"]))
	f.mu.Unlock()

	// An unseekable reader cannot be re-sent: one attempt, the 503 surfaces.
	f.puts = 0
	err := c.Artifacts.Put(context.Background(), testRoot, "p/pipe.bin", io.MultiReader(bytes.NewReader(content)), -1)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 503, ae.StatusCode)
	assert.Equal(t, 1, f.puts)
}

func TestMultipartUpload(t *testing.T) {
	f, srv := newFakeStore(t)
	f.multipart = true
	// The second part PUT fails once with 503: only that part is re-sent.
	var failed atomic.Bool
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Query().Get("partNumber") == "2" && !failed.Swap(true) {
			_, _ = io.CopyN(io.Discard, r.Body, 10)
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	c := testClient(t, srv.URL, WithToken("secret-token"), WithMultipartUpload(2000, 1000))
	content := randomBytes(t, 2500)
	local := writeFile(t, t.TempDir(), "model.bin", content)
	require.NoError(t, c.Artifacts.UploadFile(context.Background(), testRoot, local, "model"))

	_, creates, completes, aborts := f.snapshot()
	assert.Equal(t, 1, creates)
	assert.Equal(t, 1, completes)
	assert.Empty(t, aborts)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.True(t, bytes.Equal(content, f.files["1/0123abcd/artifacts/model/model.bin"]), "assembled file differs")
	assert.Equal(t, 4, f.partPuts, "3 parts + 1 retry")
	assert.Equal(t, 0, f.puts, "no single PUT")
	for _, a := range f.partAuth {
		assert.Empty(t, a, "credentials must not go to the storage host")
	}
	sort.Strings(f.partHeader)
	assert.Equal(t, []string{"1", "2", "2", "3"}, f.partHeader, "credential headers are sent")

	// Below the threshold: a single PUT, no create.
	small := writeFile(t, t.TempDir(), "small.bin", content[:1999])
	f.mu.Unlock()
	require.NoError(t, c.Artifacts.UploadFile(context.Background(), testRoot, small, ""))
	f.mu.Lock()
	assert.Equal(t, 1, f.creates)
	assert.Equal(t, 1, f.puts)
}

func TestMultipartPutFromReaderAt(t *testing.T) {
	f, srv := newFakeStore(t)
	f.multipart = true
	c := testClient(t, srv.URL, WithMultipartUpload(100, 64))
	content := randomBytes(t, 1000)
	r := bytes.NewReader(append([]byte("0123456789"), content...))
	_, _ = r.Seek(10, io.SeekStart)
	require.NoError(t, c.Artifacts.Put(context.Background(), testRoot, "a/b.bin", r, int64(len(content))))
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.True(t, bytes.Equal(content, f.files["1/0123abcd/artifacts/a/b.bin"]))
	assert.Equal(t, 16, f.partPuts)
}

func TestMultipartFallbackIsRemembered(t *testing.T) {
	f, srv := newFakeStore(t) // answers mpu/create with 501 NOT_IMPLEMENTED
	c := testClient(t, srv.URL, WithMultipartUpload(10, 5))
	dir := t.TempDir()
	for i := range 3 {
		local := writeFile(t, dir, fmt.Sprintf("f%d.bin", i), randomBytes(t, 100))
		require.NoError(t, c.Artifacts.UploadFile(context.Background(), testRoot, local, ""))
	}
	_, creates, _, _ := f.snapshot()
	assert.Equal(t, 1, creates, "the server's lack of multipart is probed once")
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, 3, f.puts)
	assert.Len(t, f.files, 3)

	// Another client probes again: the memory is per client.
	c2 := testClient(t, srv.URL, WithMultipartUpload(10, 5))
	f.mu.Unlock()
	require.NoError(t, c2.Artifacts.UploadFile(context.Background(), testRoot, filepath.Join(dir, "f0.bin"), "x"))
	f.mu.Lock()
	assert.Equal(t, 2, f.creates)
}

func TestMultipartAbortsOnFailure(t *testing.T) {
	f, srv := newFakeStore(t)
	f.multipart = true
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Query().Get("partNumber") == "2" {
			w.WriteHeader(http.StatusForbidden) // e.g. an expired presigned URL
			_, _ = io.WriteString(w, "<Error><Code>AccessDenied</Code></Error>")
			return true
		}
		return false
	}
	c := testClient(t, srv.URL, WithMultipartUpload(100, 100))
	local := writeFile(t, t.TempDir(), "m.bin", randomBytes(t, 1000))
	err := c.Artifacts.UploadFile(context.Background(), testRoot, local, "")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 403, ae.StatusCode)
	assert.NotContains(t, err.Error(), "secret", "presigned query must not appear in errors")
	_, creates, completes, aborts := f.snapshot()
	assert.Equal(t, 1, creates)
	assert.Equal(t, 0, completes)
	assert.Equal(t, []string{"up-1"}, aborts)
	f.mu.Lock()
	assert.Empty(t, f.files)
	assert.Equal(t, 0, f.puts, "no fallback to a single PUT after a real failure")
	f.mu.Unlock()

	// A cancelled context still aborts. The hook acts on this upload's parts
	// only: a part request of the first upload, cancelled on the client, may
	// still reach the server after the swap.
	ctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	f.partHook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Query().Get("uploadId") != "up-2" {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}
	f.mu.Unlock()
	err = c.Artifacts.UploadFile(ctx, testRoot, local, "")
	require.ErrorIs(t, err, context.Canceled)
	_, _, _, aborts = f.snapshot()
	assert.Equal(t, []string{"up-1", "up-2"}, aborts)
}

func TestDownloadFileAndDirectory(t *testing.T) {
	f, srv := newFakeStore(t)
	f.files["1/0123abcd/artifacts/model/MLmodel"] = []byte("flavors: {}")
	f.files["1/0123abcd/artifacts/model/data/w.bin"] = []byte("weights")
	f.files["1/0123abcd/artifacts/model/data/deep/x.txt"] = []byte("x")
	f.files["1/0123abcd/artifacts/top.txt"] = []byte("top")
	c := testClient(t, srv.URL)
	ctx := context.Background()
	dst := t.TempDir()

	p, err := c.Artifacts.Download(ctx, testRoot, "model", dst)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dst, "model"), p)
	for rel, want := range map[string]string{"MLmodel": "flavors: {}", "data/w.bin": "weights", "data/deep/x.txt": "x"} {
		b, err := os.ReadFile(filepath.Join(p, rel))
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
	}
	_, err = os.Stat(filepath.Join(dst, "top.txt"))
	assert.True(t, os.IsNotExist(err))

	p, err = c.Artifacts.Download(ctx, testRoot, "model/data/w.bin", dst)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dst, "model", "data", "w.bin"), p)

	all := t.TempDir()
	p, err = c.Artifacts.Download(ctx, testRoot, "", all)
	require.NoError(t, err)
	assert.Equal(t, all, p)
	assert.Equal(t, []string{"model/MLmodel", "model/data/deep/x.txt", "model/data/w.bin", "top.txt"}, walkFiles(t, all))

	_, err = c.Artifacts.Download(ctx, testRoot, "missing.txt", dst)
	assert.True(t, IsNotFound(err), "%v", err)
}

func walkFiles(t *testing.T, dir string) []string {
	var out []string
	require.NoError(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	sort.Strings(out)
	return out
}

// A hostile or broken server cannot make a directory download write outside
// the destination.
func TestDownloadRejectsEscapingNames(t *testing.T) {
	for _, name := range []string{"../evil", "..", "a/b", "."} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/2.0/mlflow-artifacts/artifacts" {
				_ = json.NewEncoder(w).Encode(map[string]any{"files": []FileInfo{{Path: name, FileSize: 4}}})
				return
			}
			_, _ = io.WriteString(w, "evil")
		}))
		c := testClient(t, srv.URL)
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		_, err := c.Artifacts.Download(context.Background(), testRoot, "", dst)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "unsafe entry name", name)
		_, err = c.Artifacts.List(context.Background(), testRoot, "d")
		assert.Error(t, err, name)
		assert.Empty(t, walkFiles(t, parent), name)
		srv.Close()
	}
}

// A response cut short is retried from the start; when every attempt fails,
// nothing (not even a partial temp file) is left behind.
func TestDownloadTruncatedRetriesAndLeavesNothing(t *testing.T) {
	content := randomBytes(t, 200_000)
	var gets atomic.Int32
	okFrom := int32(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/2.0/mlflow-artifacts/artifacts" {
			_, _ = io.WriteString(w, `{}`)
			return
		}
		n := gets.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		if n < atomic.LoadInt32(&okFrom) || atomic.LoadInt32(&okFrom) == 0 {
			_, _ = w.Write(content[:50_000])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = w.Write(content)
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)
	dst := t.TempDir()
	p, err := c.Artifacts.Download(context.Background(), testRoot, "w.bin", dst)
	require.NoError(t, err)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content, b))
	assert.Equal(t, int32(2), gets.Load())
	assert.Equal(t, []string{"w.bin"}, walkFiles(t, dst))

	atomic.StoreInt32(&okFrom, 0)
	gets.Store(0)
	dst2 := t.TempDir()
	_, err = c.Artifacts.Download(context.Background(), testRoot, "w.bin", dst2)
	require.Error(t, err)
	assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
	assert.Equal(t, int32(4), gets.Load(), "first attempt + 3 retries")
	assert.Empty(t, walkFiles(t, dst2))
}

// A transfer that stops making progress is cut after the client timeout and
// retried, though the whole transfer may take longer than that timeout.
func TestStalledDownloadIsRetried(t *testing.T) {
	content := randomBytes(t, 10_000)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := gets.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(len(content)))
		if n == 1 {
			_, _ = w.Write(content[:100])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // stall until the client gives up
			return
		}
		// Slow but steady: 5 chunks, 100ms apart = longer than the timeout.
		for i := range 5 {
			_, _ = w.Write(content[i*2000 : (i+1)*2000])
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	c := testClient(t, srv.URL, WithTimeout(300*time.Millisecond))
	dst := t.TempDir()
	tmp := filepath.Join(dst, "f.bin")
	require.NoError(t, c.Artifacts.downloadFile(context.Background(), "1/r/artifacts", "f.bin", tmp))
	b, err := os.ReadFile(tmp)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content, b))
	assert.Equal(t, int32(2), gets.Load())
}

func TestRunsLogArtifactUsesRunRoot(t *testing.T) {
	f, srv := newFakeStore(t)
	run := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/2.0/mlflow/runs/get" {
			_, _ = fmt.Fprintf(w, `{"run":{"info":{"run_id":"abc","artifact_uri":"mlflow-artifacts:/7/abc/artifacts"}}}`)
			return
		}
		f.serveProxy(w, r)
	}))
	defer run.Close()
	_ = srv
	c := testClient(t, run.URL)
	dir := t.TempDir()
	writeFile(t, dir, "a.txt", []byte("a"))
	writeFile(t, dir, "sub/b.txt", []byte("b"))
	require.NoError(t, c.Runs.LogArtifact(context.Background(), "abc", filepath.Join(dir, "a.txt"), "one"))
	require.NoError(t, c.Runs.LogArtifacts(context.Background(), "abc", dir, "all"))
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"7/abc/artifacts/all/a.txt", "7/abc/artifacts/all/sub/b.txt", "7/abc/artifacts/one/a.txt"}, keys)

	var ve *ValidationError
	assert.ErrorAs(t, c.Runs.LogArtifact(context.Background(), "", "x", ""), &ve)
}

func TestForEachStopsAtFirstError(t *testing.T) {
	var ran atomic.Int32
	boom := errors.New("boom")
	err := forEach(context.Background(), 2, 100, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 3 {
			return boom
		}
		return ctx.Err()
	})
	assert.ErrorIs(t, err, boom)
	assert.Less(t, ran.Load(), int32(100))
}
