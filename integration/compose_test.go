package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// docker-compose.yml must stay a valid description of the same stack that
// scripts/services.sh runs. Docker's own validator is used where the compose
// plugin exists; otherwise the file is parsed and its services checked.
func TestDockerComposeParses(t *testing.T) {
	path := filepath.Join("..", "docker-compose.yml")
	if out, err := exec.Command("docker", "compose", "-f", path, "config", "--quiet").CombinedOutput(); err == nil {
		return
	} else {
		t.Logf("docker compose unavailable (%v: %s); checking the YAML instead", err, out)
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Ports       []string       `yaml:"ports"`
			Healthcheck map[string]any `yaml:"healthcheck"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	for name, image := range map[string]string{
		"mlflow":       "ghcr.io/mlflow/mlflow:",
		"featurestore": "pgvector/pgvector:pg15",
		"redis":        "redis:",
	} {
		svc, ok := doc.Services[name]
		require.True(t, ok, "service %s", name)
		assert.Contains(t, svc.Image, image, name)
		assert.NotEmpty(t, svc.Healthcheck, "%s has a healthcheck", name)
	}
	// Same loopback ports as the native services, so one environment fits both.
	assert.Contains(t, doc.Services["mlflow"].Ports, "127.0.0.1:5055:5000")
	assert.Contains(t, doc.Services["featurestore"].Ports, "127.0.0.1:55432:5432")
}
