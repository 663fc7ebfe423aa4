package embedded_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
)

// crashEnv tells the re-executed test binary to be the writer that
// TestCrashSafety kills.
const crashEnv = "CAPFLOW_EMBEDDED_CRASH_WRITER"

// Each crash dataset is big enough that a commit takes a few milliseconds,
// so kills land inside WriteDataset as well as between calls.
const (
	crashTools = 300
	crashCaps  = 60
	crashExps  = 120
	crashQs    = 20
)

// crashDataset is dataset i: every id carries the prefix "d<i>-" and every
// experience the session "d<i>", so its parts can be counted.
func crashDataset(i int) *featurestore.Dataset {
	p := fmt.Sprintf("d%05d-", i)
	d := &featurestore.Dataset{}
	for j := range crashTools {
		id := fmt.Sprintf("%stool%03d", p, j)
		d.Tools = append(d.Tools, featurestore.Tool{ID: id, Name: id, Description: strings.Repeat("describes the tool ", 10)})
	}
	for j := range crashCaps {
		id := fmt.Sprintf("%scap%03d", p, j)
		members := []string{d.Tools[j].ID, d.Tools[j+crashCaps].ID}
		if j > 0 {
			members = append(members, d.Capabilities[j-1].ID)
		}
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: id, Name: id, Members: members})
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	for j := range crashExps {
		c := d.Capabilities[j%crashCaps].ID
		d.Experiences = append(d.Experiences, featurestore.Experience{
			Intent: fmt.Sprintf("intent %d", j), IntentEmbedding: make([]float32, testConfig.TextDim),
			CandidateIDs: []string{c}, SelectedCapability: c, Rank: 1, Outcome: featurestore.OutcomeSuccess,
			Timestamp: t0.Add(time.Duration(j) * time.Second), SessionID: fmt.Sprintf("d%05d", i),
		})
	}
	for j := range crashQs {
		d.Queries = append(d.Queries, featurestore.Query{ID: fmt.Sprintf("%sq%02d", p, j), Intent: "q", Relevant: []string{d.Capabilities[j].ID}})
	}
	return d
}

// TestCrashWriter is not a test of its own: run by TestCrashSafety in a
// child process, it writes datasets from the number given by crashEnv on,
// printing each one's number once WriteDataset returned, until killed.
func TestCrashWriter(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	path, startStr, _ := strings.Cut(spec, "|")
	start, err := strconv.Atoi(startStr)
	require.NoError(t, err)
	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second) // never outlive a parent that failed to kill
	for i := start; time.Now().Before(deadline); i++ {
		require.NoError(t, st.WriteDataset(context.Background(), crashDataset(i)))
		fmt.Printf("committed %d\n", i)
	}
}

// TestCrashSafety kills (SIGKILL) a writer in the middle of a loop of
// WriteDataset calls, several times over the same file, and checks that
// the file opens, passes bbolt's consistency check, and holds every
// dataset either completely or not at all — every acknowledged one
// completely. (A killed process loses nothing the kernel already has; the
// fsync on commit is what extends this to power loss.)
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	next, acked := 0, -1
	ackedSet := map[int]bool{}
	ack := func(line string) bool {
		n, ok := strings.CutPrefix(line, "committed ")
		if !ok {
			return false
		}
		i, err := strconv.Atoi(n)
		require.NoError(t, err, line)
		ackedSet[i] = true
		acked = max(acked, i)
		return true
	}
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", crashEnv, path, next))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())

		// Let a few datasets commit, then kill at a random moment of the next.
		want := 2 + rng.IntN(4)
		lines := bufio.NewScanner(out)
		seen := 0
		for seen < want && lines.Scan() {
			if ack(lines.Text()) {
				seen++
			}
		}
		require.Equal(t, want, seen, "round %d: writer stopped early", round)
		time.Sleep(time.Duration(rng.IntN(8000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Kill())
		for lines.Scan() { // acknowledgements printed before the kill
			ack(lines.Text())
		}
		_ = cmd.Wait()
		// The next writer starts past anything this one may have committed
		// without acknowledging.
		next = acked + 2
		t.Logf("round %d: killed after dataset %d was acknowledged", round, acked)
	}

	// bbolt's own check of the B+tree and freelist.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}))
	require.NoError(t, db.Close())

	st, err := embedded.Open(path, testConfig)
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	tools, err := st.Tools(ctx)
	require.NoError(t, err)
	caps, err := st.Capabilities(ctx)
	require.NoError(t, err)
	queries, err := st.Queries(ctx)
	require.NoError(t, err)
	count := func(ids []string) map[int]int {
		n := map[int]int{}
		for _, id := range ids {
			i, err := strconv.Atoi(id[1:6])
			require.NoError(t, err, id)
			n[i]++
		}
		return n
	}
	var ids [3][]string
	for _, x := range tools {
		ids[0] = append(ids[0], x.ID)
	}
	for _, x := range caps {
		ids[1] = append(ids[1], x.ID)
	}
	for _, x := range queries {
		ids[2] = append(ids[2], x.ID)
	}
	nTools, nCaps, nQueries := count(ids[0]), count(ids[1]), count(ids[2])
	complete := 0
	for i := 0; i <= acked+1; i++ {
		exps, err := st.ExperiencesBySession(ctx, fmt.Sprintf("d%05d", i))
		require.NoError(t, err)
		got := [4]int{nTools[i], nCaps[i], len(exps), nQueries[i]}
		if got == [4]int{} {
			continue
		}
		assert.Equal(t, [4]int{crashTools, crashCaps, crashExps, crashQs}, got, "dataset %d is partial", i)
		complete++
	}
	for i := range nTools {
		assert.LessOrEqual(t, i, acked+1, "dataset %d was never started", i)
	}
	// Every acknowledged dataset survived.
	assert.GreaterOrEqual(t, len(ackedSet), 8)
	assert.GreaterOrEqual(t, complete, len(ackedSet))
	for i := range ackedSet {
		assert.Equal(t, crashTools, nTools[i], "acknowledged dataset %d missing", i)
	}
	t.Logf("%d datasets complete, %d acknowledged", complete, len(ackedSet))
}
