package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// artRun creates an experiment and a run on the test server and returns the
// run (its Info.ArtifactURI is the artifact root).
func artRun(t *testing.T, ctx context.Context, c *mlflowclient.Client) *mlflowclient.Run {
	t.Helper()
	expID, err := c.Experiments.Create(ctx, mlflowclient.CreateExperimentOptions{Name: testenv.Name(t, "artifacts")})
	require.NoError(t, err)
	run, err := c.Runs.Create(ctx, mlflowclient.CreateRunOptions{ExperimentID: expID})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(run.Info.ArtifactURI, "mlflow-artifacts:/"),
		"the test server must proxy artifacts (--artifacts-destination); got root %q", run.Info.ArtifactURI)
	return run
}

// artRandomFile writes n random bytes to path and returns their sha256.
func artRandomFile(t *testing.T, path string, n int64) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), rand.Reader, n)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return hex.EncodeToString(h.Sum(nil))
}

func artSHA256(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	_, err := io.Copy(h, r)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// artAllocated runs f and returns how many bytes the Go heap allocated meanwhile.
func artAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// artTree maps each file under dir (slash paths) to its content.
func artTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	}))
	return out
}

// A 50 MB file goes up and comes back intact, and neither direction holds
// the file in memory.
func TestArtifactsLargeFileRoundTrip(t *testing.T) {
	c := testenv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := artRun(t, ctx, c)
	root := run.Info.ArtifactURI

	const size = 50 << 20
	local := filepath.Join(t.TempDir(), "weights.bin")
	sum := artRandomFile(t, local, size)

	// 50 MB per run would pile up on a shared development server.
	t.Cleanup(func() { _ = c.Artifacts.Delete(context.Background(), root, "big") })

	var err error
	alloc := artAllocated(func() { err = c.Artifacts.UploadFile(ctx, root, local, "big") })
	require.NoError(t, err)
	t.Logf("upload of %d MB allocated %.1f MB", size>>20, float64(alloc)/(1<<20))
	assert.Less(t, alloc, uint64(size/5), "upload must stream, not buffer the file")

	files, err := c.Artifacts.List(ctx, root, "big")
	require.NoError(t, err)
	assert.Equal(t, []mlflowclient.FileInfo{{Path: "big/weights.bin", FileSize: size}}, files)

	dst := t.TempDir()
	var got string
	alloc = artAllocated(func() { got, err = c.Artifacts.Download(ctx, root, "big/weights.bin", dst) })
	require.NoError(t, err)
	t.Logf("download of %d MB allocated %.1f MB", size>>20, float64(alloc)/(1<<20))
	assert.Less(t, alloc, uint64(size/5), "download must stream, not buffer the file")
	assert.Equal(t, filepath.Join(dst, "big", "weights.bin"), got)
	f, err := os.Open(got)
	require.NoError(t, err)
	assert.Equal(t, sum, artSHA256(t, f))
	require.NoError(t, f.Close())
	entries, err := os.ReadDir(filepath.Join(dst, "big"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left beside the download")

	rc, err := c.Artifacts.Open(ctx, root, "big/weights.bin")
	require.NoError(t, err)
	assert.Equal(t, sum, artSHA256(t, rc))
	require.NoError(t, rc.Close())
}

// Nested directories round-trip through UploadDir/Download, names that need
// escaping included, and land where the official Python client looks.
func TestArtifactsDirectoryRoundTrip(t *testing.T) {
	c := testenv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := artRun(t, ctx, c)
	root := run.Info.ArtifactURI

	src := t.TempDir()
	want := map[string]string{
		"MLmodel":                "flavors: {}\n",
		"data/weights.txt":       "0.1 0.2 0.3",
		"data/deep/er/notes.md":  "# deep",
		"sp ace/ü n%?&=+;.txt":   "escaped",
		"sp ace/empty.txt":       "",
		"data/deep/er/blob.json": `{"k": [1, 2, 3]}`,
	}
	for p, content := range want {
		full := filepath.Join(src, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(src, "empty-dir"), 0o755)) // not representable; skipped

	require.NoError(t, c.Runs.LogArtifacts(ctx, run.Info.RunID, src, "model"))

	top, err := c.Artifacts.List(ctx, root, "model")
	require.NoError(t, err)
	assert.Equal(t, []mlflowclient.FileInfo{
		{Path: "model/MLmodel", FileSize: int64(len(want["MLmodel"]))},
		{Path: "model/data", IsDir: true},
		{Path: "model/sp ace", IsDir: true},
	}, top)
	// Listing a file path lists as empty, like the official client.
	none, err := c.Artifacts.List(ctx, root, "model/MLmodel")
	require.NoError(t, err)
	assert.Empty(t, none)

	dst := t.TempDir()
	got, err := c.Artifacts.Download(ctx, root, "model", dst)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dst, "model"), got)
	assert.Equal(t, want, artTree(t, got))

	// A sub-directory alone, and the whole root.
	got, err = c.Artifacts.Download(ctx, root, "model/data/deep", t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"er/notes.md": "# deep", "er/blob.json": want["data/deep/er/blob.json"]}, artTree(t, got))

	single := filepath.Join(t.TempDir(), "extra.txt")
	require.NoError(t, os.WriteFile(single, []byte("extra"), 0o644))
	require.NoError(t, c.Runs.LogArtifact(ctx, run.Info.RunID, single, ""))
	all := t.TempDir()
	got, err = c.Artifacts.Download(ctx, root, "", all)
	require.NoError(t, err)
	assert.Equal(t, all, got)
	tree := artTree(t, all)
	assert.Len(t, tree, len(want)+1)
	assert.Equal(t, "extra", tree["extra.txt"])
	assert.Equal(t, "escaped", tree["model/sp ace/ü n%?&=+;.txt"])

	// The official client sees the same layout.
	py := testenv.Python(t)
	script := `
import json, sys
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1])
out = {}
def walk(p):
    for f in c.list_artifacts(sys.argv[2], p):
        if f.is_dir: walk(f.path)
        else: out[f.path] = f.file_size
walk(None)
print(json.dumps(out))
`
	cmd := exec.CommandContext(ctx, py, "-c", script, c.TrackingURI(), run.Info.RunID)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+c.TrackingURI())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var pyFiles map[string]int64
	require.NoError(t, json.Unmarshal(out, &pyFiles))
	wantSizes := map[string]int64{"extra.txt": 5}
	for p, content := range want {
		wantSizes["model/"+p] = int64(len(content))
	}
	assert.Equal(t, wantSizes, pyFiles)
}

func TestArtifactsPutOpenDeleteNotFound(t *testing.T) {
	c := testenv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := artRun(t, ctx, c).Info.ArtifactURI

	require.NoError(t, c.Artifacts.Put(ctx, root, "notes/readme.md", strings.NewReader("# hello"), 7))
	// Unknown size and an unseekable reader: sent chunked.
	require.NoError(t, c.Artifacts.Put(ctx, root, "notes/sub/stream.txt", io.MultiReader(strings.NewReader("stre"), strings.NewReader("amed")), -1))

	rc, err := c.Artifacts.Open(ctx, root, "notes/readme.md")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "# hello", string(b))
	rc, err = c.Artifacts.Open(ctx, root, "notes/sub/stream.txt")
	require.NoError(t, err)
	b, err = io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "streamed", string(b))

	require.NoError(t, c.Artifacts.Delete(ctx, root, "notes/readme.md"))
	_, err = c.Artifacts.Open(ctx, root, "notes/readme.md")
	assert.True(t, mlflowclient.IsNotFound(err), "open after delete: %v", err)
	var ae *mlflowclient.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, mlflowclient.CodeResourceDoesNotExist, ae.Code)

	dst := t.TempDir()
	_, err = c.Artifacts.Download(ctx, root, "notes/readme.md", dst)
	assert.True(t, mlflowclient.IsNotFound(err), "download after delete: %v", err)
	assert.Empty(t, artTree(t, dst), "a failed download leaves nothing")

	// Deleting a directory removes its contents.
	require.NoError(t, c.Artifacts.Delete(ctx, root, "notes"))
	files, err := c.Artifacts.List(ctx, root, "")
	require.NoError(t, err)
	assert.Empty(t, files)
	_, err = c.Artifacts.Open(ctx, root, "notes/sub/stream.txt")
	assert.True(t, mlflowclient.IsNotFound(err), "%v", err)

	// Roots the proxy cannot serve fail before sending.
	var ve *mlflowclient.ValidationError
	_, err = c.Artifacts.List(ctx, "s3://bucket/1/x/artifacts", "")
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, err.Error(), "not proxied")
}

// countHandler counts log records whose message contains substr.
type countHandler struct {
	substr string
	n      *atomic.Int32
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// The local server's artifact store has no multipart support: the client
// learns that once (NOT_IMPLEMENTED) and uploads with single PUTs.
func TestArtifactsMultipartFallsBackOnRealServer(t *testing.T) {
	var probes atomic.Int32
	log := slog.New(countHandler{"no multipart upload", &probes})
	c := testenv.Client(t, mlflowclient.WithMultipartUpload(64<<10, 16<<10), mlflowclient.WithLogger(log))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := artRun(t, ctx, c).Info.ArtifactURI

	dir := t.TempDir()
	sums := map[string]string{}
	for _, name := range []string{"a.bin", "b.bin"} {
		sums[name] = artRandomFile(t, filepath.Join(dir, name), 200<<10)
		require.NoError(t, c.Artifacts.UploadFile(ctx, root, filepath.Join(dir, name), "mp"))
	}
	assert.Equal(t, int32(1), probes.Load(), "mpu/create is probed once per client")

	files, err := c.Artifacts.List(ctx, root, "mp")
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
		assert.Equal(t, int64(200<<10), f.FileSize)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"mp/a.bin", "mp/b.bin"}, names)
	for name, sum := range sums {
		rc, err := c.Artifacts.Open(ctx, root, "mp/"+name)
		require.NoError(t, err)
		assert.Equal(t, sum, artSHA256(t, rc), name)
		require.NoError(t, rc.Close())
	}
}
