package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad flag combinations are refused before anything is opened.
func TestEvaluateFlags(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	missing := []string{"--store-path", filepath.Join(t.TempDir(), "never", "created.db"), "--no-tracking"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give exactly one of --queries and --query-prefix"},
		{[]string{"--query-prefix", "dev-", "--report-prefix", "test_in_domain-", "--report-queries", "q.jsonl"}, "at most one of --report-queries and --report-prefix"},
		{[]string{"--query-prefix", "dev-", "--holdout", "--valid-fraction", "1"}, "--valid-fraction must be in (0,1)"},
	} {
		_, err := capflow(t, append(append([]string{"evaluate"}, missing...), tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
}

// On Seal-Tools, --query-prefix dev- --holdout decides on the fifth of dev
// that training holds out, --report-prefix test_in_domain- is reported in
// its own table, and a report prefix sharing queries with the decision
// ones is refused, naming the flags.
func TestEvaluateHoldoutAndReport(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CAPFLOW_DATABASE_URL", "")
	store := []string{"--store-path", filepath.Join(t.TempDir(), "store.db"), "--text-dim", "64"}
	_, err := capflow(t, append([]string{"data", "import", "--format", "sealtools"}, append(store, sealTools(t))...)...)
	require.NoError(t, err)
	_, err = capflow(t, append([]string{"features", "build", "--encoder", "hashing", "--walks-per-node", "4", "--no-tracking", "--no-progress"}, store...)...)
	require.NoError(t, err)
	eval := append([]string{"evaluate", "--encoder", "hashing", "--model", "bm25", "--levels", "0", "--no-tracking", "--no-progress",
		"--query-prefix", "dev-", "--holdout"}, store...)

	out, err := capflow(t, append(eval, "--report-prefix", "test_in_domain-")...)
	require.NoError(t, err)
	t.Log("\n" + out)
	m := regexp.MustCompile(`(?m)^(\d+) queries \(the store's queries with prefix "dev-" held out by training's session split \(valid fraction 0\.2, split seed 0\)\)$`).FindStringSubmatch(out)
	require.Len(t, m, 2, "decision queries line")
	n, _ := strconv.Atoi(m[1])
	assert.Greater(t, n, 0)
	assert.Regexp(t, `(?m)^reported only \(not gated\): \d+ queries \(the store's queries with prefix "test_in_domain-"\)$`, out)
	assert.Regexp(t, `(?m)^\| bm25 \|( \d\.\d{4} \|)+$`, out)

	all, err := capflow(t, append(eval[:len(eval)-len(store)-1:len(eval)-len(store)-1], store...)...)
	require.NoError(t, err)
	m = regexp.MustCompile(`(?m)^(\d+) queries`).FindStringSubmatch(all)
	require.Len(t, m, 2)
	total, _ := strconv.Atoi(m[1])
	assert.InDelta(t, 0.2, float64(n)/float64(total), 0.05, "--holdout keeps about a fifth of dev (%d of %d)", n, total)

	_, err = capflow(t, append(eval, "--report-prefix", "dev-")...)
	assert.ErrorContains(t, err, "--report-queries/--report-prefix: ")
}
