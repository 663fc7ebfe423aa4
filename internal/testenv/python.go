package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// CrossCheck runs the venv's python on scripts/<script> with two arguments,
// an input JSON file holding in and an output file, and decodes the output
// into out: the shape of every Python cross-check. modules are imported
// first; when one is missing the test is skipped locally and fails under CI.
func CrossCheck(t testing.TB, script string, modules []string, in, out any) {
	t.Helper()
	py := Python(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, py, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput(); err != nil {
		Missing(t, "Python modules %v in the venv (%s): pip install -r scripts/requirements.txt", modules, msg)
	}
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.CommandContext(ctx, py, filepath.Join(root, "scripts", script), inPath, outPath).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, msg)
	}
	if body, err = os.ReadFile(outPath); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s output: %v", script, err)
	}
}

// LogBuffer collects log output from servers under test, safe for the
// concurrent writes of request goroutines; tests print it when they fail.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
