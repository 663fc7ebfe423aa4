package testmodel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
	"github.com/capflow/capflow/featurestore/embedded"
	"github.com/capflow/capflow/models/textembed"
	"github.com/capflow/capflow/pipeline/features"
)

// LogsOptions size the synthetic logs of Logs. Zero fields take the
// defaults given.
type LogsOptions struct {
	Domains         int     // 8; each has one level-1 capability over its level-0 ones
	CapsPerDomain   int     // level-0 capabilities per domain, 9 (at most len(logVerbs))
	Tools           int     // 500, dealt round-robin to the level-0 capabilities
	Workflows       int     // 40 recurring tasks the sessions perform
	Sessions        int     // 160
	JargonWorkflows int     // how many workflows are asked for in jargon only; default half
	Seed            uint64  // everything is drawn from it
	FailureRate     float64 // of a step failing first; 0.15
}

var logVerbs = []string{"create", "update", "delete", "search", "export", "import", "approve", "schedule", "summarize", "archive", "merge", "validate"}

func (o LogsOptions) withDefaults() LogsOptions {
	if o.Domains == 0 {
		o.Domains = 8
	}
	if o.CapsPerDomain == 0 {
		o.CapsPerDomain = 9
	}
	if o.Tools == 0 {
		o.Tools = 500
	}
	if o.Workflows == 0 {
		o.Workflows = 40
	}
	if o.Sessions == 0 {
		o.Sessions = 160
	}
	if o.JargonWorkflows == 0 {
		o.JargonWorkflows = o.Workflows / 2
	}
	if o.FailureRate == 0 {
		o.FailureRate = 0.15
	}
	return o
}

// Logs builds a catalog and a log of multi-step sessions in which learning
// from the log provably helps: a team's recurring workflows, each a fixed
// sequence of 2–4 level-0 capabilities of one domain, asked for by the
// workflow's own name, a made-up word ("the zelvorn run") that no tool or
// capability text contains. Half of the workflows (JargonWorkflows) are
// asked for by that name alone, so BM25 and cosine similarity have
// nothing to go on; the others also name their domain and the first
// step's verb. Only a model that learns from other sessions of the same
// workflow can rank the jargon ones.
//
// The catalog: Domains × CapsPerDomain level-0 capabilities ("export
// ledger records") whose Tools tools are dealt round-robin, and one level-1
// capability per domain over its level-0 ones. A session performs one
// workflow: each step selects its capability with the earlier steps' tools
// as context; a step fails first with probability FailureRate (a sibling
// capability selected, outcome failure). Sessions, workflows and words are
// all drawn from Seed.
func Logs(o LogsOptions) *featurestore.Dataset {
	o = o.withDefaults()
	rng := rand.New(rand.NewPCG(o.Seed, 0x6c6f6773))
	used := map[string]bool{}
	word := func(syllables int) string {
		const cons, vows = "bdfgklmnprstvz", "aeiou"
		for {
			var b strings.Builder
			for range syllables {
				b.WriteByte(cons[rng.IntN(len(cons))])
				b.WriteByte(vows[rng.IntN(len(vows))])
			}
			b.WriteByte(cons[rng.IntN(len(cons))])
			if w := b.String(); !used[w] {
				used[w] = true
				return w
			}
		}
	}
	d := &featurestore.Dataset{}
	type domain struct {
		name, object string
		caps         []int // indices into d.Capabilities
	}
	domains := make([]domain, o.Domains)
	for i := range domains {
		domains[i] = domain{name: word(2), object: word(2)}
	}
	verbs := logVerbs[:min(o.CapsPerDomain, len(logVerbs))]
	for di := range domains {
		dm := &domains[di]
		for _, v := range verbs {
			dm.caps = append(dm.caps, len(d.Capabilities))
			d.Capabilities = append(d.Capabilities, featurestore.Capability{
				ID:          fmt.Sprintf("%s.%s", dm.name, v),
				Name:        fmt.Sprintf("%s %s %s", v, dm.name, dm.object),
				Description: fmt.Sprintf("%s the %s of the %s system", v, dm.object, dm.name),
			})
		}
	}
	level0 := len(d.Capabilities)
	members := make([][]string, level0)
	for i := range o.Tools {
		c := i % level0
		cp := d.Capabilities[c]
		dm := domains[c/len(verbs)]
		id := fmt.Sprintf("tool%03d", i)
		d.Tools = append(d.Tools, featurestore.Tool{ID: id,
			Name:        fmt.Sprintf("%s_%s_%s", strings.Fields(cp.Name)[0], dm.object, word(1)),
			Description: fmt.Sprintf("%s %s %s entries through the %s api", strings.Fields(cp.Name)[0], dm.name, dm.object, word(2))})
		members[c] = append(members[c], id)
	}
	for c := range level0 {
		d.Capabilities[c].Members = members[c]
	}
	for _, dm := range domains {
		var ms []string
		for _, c := range dm.caps {
			ms = append(ms, d.Capabilities[c].ID)
		}
		d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: dm.name + ".suite", Name: dm.name + " suite",
			Description: "everything about the " + dm.name + " " + dm.object, Members: ms})
	}

	type workflow struct {
		domain int
		steps  []int // level-0 capability indices
		name   string
		jargon bool
	}
	flows := make([]workflow, o.Workflows)
	for i := range flows {
		di := rng.IntN(len(domains))
		perm := rng.Perm(len(verbs))[:2+rng.IntN(3)]
		w := workflow{domain: di, name: word(2), jargon: i < o.JargonWorkflows}
		for _, p := range perm {
			w.steps = append(w.steps, domains[di].caps[p])
		}
		flows[i] = w
	}
	fillers := []string{"please", "today", "for the team", "asap", "again", "as usual", "this week", "now"}
	base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	for s := range o.Sessions {
		w := flows[s%len(flows)]
		if s >= len(flows) {
			w = flows[rng.IntN(len(flows))]
		}
		dm := domains[w.domain]
		intent := fmt.Sprintf("%s the %s run", fillers[rng.IntN(len(fillers))], w.name)
		if !w.jargon {
			first := d.Capabilities[w.steps[0]]
			intent = fmt.Sprintf("%s the %s run: %s %s %s", fillers[rng.IntN(len(fillers))], w.name, strings.Fields(first.Name)[0], dm.name, dm.object)
		}
		session := fmt.Sprintf("s%04d", s)
		at := base.Add(time.Duration(s) * time.Hour)
		var context []string
		log := func(c int, outcome featurestore.Outcome) {
			cands := []string{d.Capabilities[c].ID}
			for _, k := range rng.Perm(len(dm.caps)) {
				if id := d.Capabilities[dm.caps[k]].ID; id != cands[0] && len(cands) < 5 {
					cands = append(cands, id)
				}
			}
			rank := 1 + rng.IntN(len(cands))
			cands[0], cands[rank-1] = cands[rank-1], cands[0]
			d.Experiences = append(d.Experiences, featurestore.Experience{
				Intent: intent, ContextTools: append([]string(nil), context...), CandidateIDs: cands,
				SelectedCapability: d.Capabilities[c].ID, Rank: rank, Outcome: outcome,
				ExecutionTimeMs: float64(100 + rng.IntN(900)), Timestamp: at, SessionID: session,
			})
			at = at.Add(time.Minute)
		}
		for _, c := range w.steps {
			if rng.Float64() < o.FailureRate {
				sib := dm.caps[rng.IntN(len(dm.caps))]
				if sib != c {
					log(sib, featurestore.OutcomeFailure)
				}
			}
			log(c, featurestore.OutcomeSuccess)
			ms := d.Capabilities[c].Members
			context = append(context, ms[rng.IntN(len(ms))])
		}
	}
	return d
}

// LogStore writes Logs(o) into a fresh embedded store under t.TempDir()
// (text dimension enc.Dim()) with each capability's text embedding, encoded
// by enc from features.CapabilityText as the features stage does: the
// only features training reads, written without the stage's graph work.
// It returns the store, its path and the dataset.
func LogStore(t testing.TB, ctx context.Context, enc textembed.Encoder, o LogsOptions) (featurestore.Store, string, *featurestore.Dataset) {
	t.Helper()
	d := Logs(o)
	cfg := featurestore.Config{TextDim: enc.Dim()}
	path := filepath.Join(t.TempDir(), "logs.db")
	st, err := embedded.Open(path, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.WriteDataset(ctx, d))
	WriteCapabilityText(t, ctx, st, enc, d)
	return st, path, d
}

// WriteCapabilityText stores the text embedding of every capability of d
// (features.CapabilityText, encoded by enc).
func WriteCapabilityText(t testing.TB, ctx context.Context, st featurestore.Store, enc textembed.Encoder, d *featurestore.Dataset) {
	t.Helper()
	names := map[string]string{}
	for _, tl := range d.Tools {
		names[tl.ID] = tl.Name
	}
	for _, c := range d.Capabilities {
		names[c.ID] = c.Name
	}
	texts := make([]string, len(d.Capabilities))
	for i, c := range d.Capabilities {
		texts[i] = features.CapabilityText(c, names)
	}
	vecs, err := enc.Encode(ctx, texts)
	require.NoError(t, err)
	rows := make([]featurestore.CapabilityFeatures, len(d.Capabilities))
	for i, c := range d.Capabilities {
		rows[i] = featurestore.CapabilityFeatures{CapabilityID: c.ID, TextEmbedding: vecs[i], ToolCount: len(c.Members),
			FeatureVersion: "test-text-only", ComputedAt: time.Now().UTC()}
	}
	require.NoError(t, st.UpsertCapabilityFeatures(ctx, rows))
}
