package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/internal/testenv"
	"github.com/capflow/capflow/mlflowclient"
)

// TestTrainSealTools imports Seal-Tools, builds features with the hashing
// encoder at 64 dimensions and trains a few steps on the dev queries under a
// real MLflow server: the printed model URI is a registered version in
// Staging.
func TestTrainSealTools(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	c := testenv.Client(t)
	uri := testenv.MLflowURI(t)
	name := testenv.Name(t, "cli-train")
	experiment := testenv.Name(t, "cli-train")
	t.Cleanup(func() {
		_ = c.Registry.DeleteModel(context.Background(), name)
		if e, err := c.Experiments.GetByName(context.Background(), experiment); err == nil {
			_ = c.Experiments.Delete(context.Background(), e.ID)
		}
	})
	store := []string{"--store-path", filepath.Join(t.TempDir(), "store.db"), "--text-dim", "64"}

	_, err := capflow(t, append([]string{"data", "import", "--format", "sealtools"}, append(store, sealTools(t))...)...)
	require.NoError(t, err)
	_, err = capflow(t, append([]string{"features", "build", "--encoder", "hashing", "--walks-per-node", "4", "--no-tracking", "--no-progress"}, store...)...)
	require.NoError(t, err)

	out, err := capflow(t, append([]string{"train", "--encoder", "hashing", "--no-progress",
		"--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--fusion-steps", "10",
		"--pseudo-prefix", "dev-", "--candidate-levels", "0", "--report-prefix", "test_in_domain-",
		"--tracking-uri", uri, "--experiment", experiment, "--registered-model", name}, store...)...)
	require.NoError(t, err)
	t.Log("\n" + out)
	assert.Regexp(t, `(?m)^trained 2 steps in \S+s on \d+ transitions`, out)
	assert.Regexp(t, `(?m)^0 +0 +0\.\d{4} +0\.\d{4} +0\.\d{4} +untrained`, out)
	assert.Regexp(t, `(?m)^1 +2 +0\.\d{4}`, out, "one row per validation epoch")
	for _, row := range []string{"trained", "untrained", "bm25", "cosine"} {
		assert.Regexp(t, `(?m)^`+row+` +(0\.\d{4} +){5}0\.\d{4}$`, out, "MRR, nDCG@5, Hit@1/3/5, COMP@5")
	}
	assert.Regexp(t, `(?m)^run +[0-9a-f]{32} \(parent [0-9a-f]{32}, experiment \d+\)$`, out)
	assert.Contains(t, out, "model   models:/"+name+"/1\n")
	assert.Contains(t, out, "stage   Staging\n")

	mv, err := c.Registry.GetVersion(context.Background(), name, "1")
	require.NoError(t, err)
	assert.Equal(t, mlflowclient.StageStaging, mv.CurrentStage)
	runID := regexp.MustCompile(`(?m)^run +([0-9a-f]{32})`).FindStringSubmatch(out)
	require.Len(t, runID, 2)
	assert.Equal(t, runID[1], mv.RunID, "the version comes from the train stage's run")
}

// Bad flag values are refused before anything is opened, and --dump-config
// reads back as the same configuration.
func TestTrainFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	missing := []string{"--store-path", filepath.Join(t.TempDir(), "never", "created.db")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--candidate-levels", "0,x"}, `--candidate-levels: "x" is not a non-negative integer`},
		{[]string{"--valid-fraction", "1"}, "--valid-fraction must be in (0,1)"},
		{[]string{"--stage", "Archived"}, "--stage must be Staging, Production or None"},
		{[]string{"--dropout", "1"}, "--dropout must be in [0,1)"},
		{[]string{"--epochs", "two"}, `invalid value "two" for flag -epochs`},
		{[]string{"--beta-step", "fast"}, `invalid value "fast" for flag -beta-step: want "run" or a number in [0,1]`},
		{[]string{"--beta-step", "1.5"}, `invalid value "1.5" for flag -beta-step`},
		{[]string{"--learning-rate", "0.1"}, "flag provided but not defined: -learning-rate"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--ablation"}, "--ablation reports on held-out queries: set --report-prefix"},
	} {
		_, err := capflow(t, append(append([]string{"train"}, missing...), tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
	_, err := os.Stat(filepath.Dir(missing[1]))
	assert.True(t, os.IsNotExist(err), "no store was created")
	// The stage's own checks name the flag too.
	_, err = capflow(t, "train", "--store-path", filepath.Join(t.TempDir(), "s.db"), "--encoder", "hashing", "--text-dim", "8",
		"--monitor", "auc", "--td-weight", "0", "--listwise-weight", "0")
	assert.ErrorContains(t, err, "train: --td-weight/--listwise-weight: must be ≥ 0 and not both 0")

	out, err := capflow(t, "train", "--dump-config", "--epochs", "3", "--pseudo-prefix", "dev-", "--stage", "None")
	require.NoError(t, err)
	assert.Contains(t, out, "\nepochs 3\n")
	assert.Contains(t, out, "\npseudo-prefix dev-\n")
	assert.Contains(t, out, "\nstage None\n")
	assert.Contains(t, out, "# batch-size 32\n", "defaults are commented out")
	assert.NotContains(t, out, "dump-config")
	file := filepath.Join(t.TempDir(), "train.conf")
	require.NoError(t, os.WriteFile(file, []byte(out), 0o644))
	again, err := capflow(t, "train", "--config", file, "--dump-config")
	require.NoError(t, err)
	assert.Equal(t, out, again)
	assert.Equal(t, 3, strings.Count(out, "\n")-strings.Count(out, "# "), "only the three flags set are live lines")
	assert.Contains(t, out, "# beta-step run\n", "β anneals over the run unless a step is given")

	// An explicit β step reads back as itself.
	out, err = capflow(t, "train", "--dump-config", "--beta-step", "0.002")
	require.NoError(t, err)
	assert.Contains(t, out, "\nbeta-step 0.002\n")
}
