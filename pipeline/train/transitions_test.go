package train

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/capflow/capflow/featurestore"
)

func exp(session string, minute int, outcome featurestore.Outcome) featurestore.Experience {
	return featurestore.Experience{
		SessionID: session, Outcome: outcome, SelectedCapability: fmt.Sprintf("%s-%d", session, minute),
		Timestamp: time.Date(2025, 1, 1, 0, minute, 0, 0, time.UTC),
	}
}

func TestRewards(t *testing.T) {
	r := DefaultRewards()
	five, one := 5, 1
	cases := []struct {
		r    Rewards
		e    featurestore.Experience
		want float64
	}{
		{r, featurestore.Experience{Outcome: featurestore.OutcomeSuccess}, 1},
		{r, featurestore.Experience{Outcome: featurestore.OutcomePartial}, 0.5},
		{r, featurestore.Experience{Outcome: featurestore.OutcomeFailure, ExecutionTimeMs: 9e9}, 0},
		{Rewards{Success: 1, TimePenalty: 0.2, TimeBudgetMs: 1000}, featurestore.Experience{Outcome: featurestore.OutcomeSuccess, ExecutionTimeMs: 500}, 0.9},
		{Rewards{Success: 1, TimePenalty: 0.2, TimeBudgetMs: 1000}, featurestore.Experience{Outcome: featurestore.OutcomeSuccess, ExecutionTimeMs: 5000}, 0.8},
		{Rewards{Success: 1, FeedbackBonus: 0.1}, featurestore.Experience{Outcome: featurestore.OutcomeSuccess, UserFeedback: &five}, 1.1},
		{Rewards{Success: 1, FeedbackBonus: 0.1}, featurestore.Experience{Outcome: featurestore.OutcomeSuccess, UserFeedback: &one}, 0.9},
	}
	for i, c := range cases {
		if got := c.r.Reward(c.e); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("case %d: reward %v, want %v", i, got, c.want)
		}
	}
}

func TestTransitionsOrderAndLinks(t *testing.T) {
	exps := []featurestore.Experience{
		exp("a", 3, featurestore.OutcomeSuccess), exp("b", 1, featurestore.OutcomeFailure),
		exp("a", 1, featurestore.OutcomeFailure), exp("a", 2, featurestore.OutcomePartial),
	}
	ts := Transitions(exps, DefaultRewards())
	want := []struct {
		cap    string
		next   int
		reward float64
	}{{"a-1", 1, 0}, {"a-2", 2, 0.5}, {"a-3", -1, 1}, {"b-1", -1, 0}}
	for i, w := range want {
		if ts[i].Experience.SelectedCapability != w.cap || ts[i].Next != w.next || ts[i].Reward != w.reward {
			t.Errorf("transition %d = %s next %d reward %v, want %+v", i, ts[i].Experience.SelectedCapability, ts[i].Next, ts[i].Reward, w)
		}
	}
	if !ts[2].Terminal() || ts[0].Terminal() {
		t.Error("terminal flags wrong")
	}
}

func manySessions(n, per int) []featurestore.Experience {
	var exps []featurestore.Experience
	for s := range n {
		for k := range per {
			exps = append(exps, exp(fmt.Sprintf("s%03d", s), s*per+k, featurestore.OutcomeSuccess))
		}
	}
	return exps
}

// checkDisjoint fails when a session has transitions on both sides or a
// Next link crosses sides or sessions.
func checkDisjoint(t *testing.T, sp Split, total int) {
	t.Helper()
	if len(sp.Train)+len(sp.Valid) != total {
		t.Fatalf("%d + %d transitions, want %d", len(sp.Train), len(sp.Valid), total)
	}
	train := map[string]bool{}
	for _, tr := range sp.Train {
		train[tr.Session] = true
	}
	for _, tr := range sp.Valid {
		if train[tr.Session] {
			t.Fatalf("session %s is on both sides", tr.Session)
		}
	}
	links := 0
	for _, part := range [][]Transition{sp.Train, sp.Valid} {
		for i, tr := range part {
			if tr.Next >= 0 {
				links++
			}
			if tr.Next >= 0 && (part[tr.Next].Session != tr.Session || !part[tr.Next].Experience.Timestamp.After(tr.Experience.Timestamp)) {
				t.Fatalf("transition %d links to another session or back in time", i)
			}
		}
	}
}

func TestSplitBySession(t *testing.T) {
	ts := Transitions(manySessions(200, 3), DefaultRewards())
	sp, err := SplitBySession(ts, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkDisjoint(t, sp, len(ts))
	if v := len(Sessions(sp.Valid)); v < 25 || v > 55 {
		t.Errorf("%d of 200 sessions in valid, want about 40", v)
	}
	again, _ := SplitBySession(ts, 0.2, 1)
	if len(again.Valid) != len(sp.Valid) || again.Valid[0].Session != sp.Valid[0].Session {
		t.Error("split is not deterministic")
	}
	// A session's side does not depend on the other sessions.
	half, _ := SplitBySession(ts[:300], 0.2, 1)
	inValid := map[string]bool{}
	for _, tr := range sp.Valid {
		inValid[tr.Session] = true
	}
	for _, tr := range half.Valid {
		if !inValid[tr.Session] {
			t.Fatalf("session %s changed side when others were removed", tr.Session)
		}
	}
	var se *SplitError
	if _, err := SplitBySession(ts, 1, 1); !errors.As(err, &se) {
		t.Errorf("fraction 1: %v", err)
	}
}

func TestSplitTemporal(t *testing.T) {
	ts := Transitions(manySessions(50, 4), DefaultRewards())
	cut, err := TemporalCutoff(ts, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := SplitTemporal(ts, cut)
	if err != nil {
		t.Fatal(err)
	}
	checkDisjoint(t, sp, len(ts))
	if n := len(Sessions(sp.Valid)); n != 10 {
		t.Errorf("%d validation sessions, want 10", n)
	}
	var lastTrain time.Time
	for _, tr := range sp.Train {
		if tr.Experience.Timestamp.After(lastTrain) {
			lastTrain = tr.Experience.Timestamp
		}
	}
	for _, tr := range sp.Valid {
		if !tr.Experience.Timestamp.After(lastTrain) {
			t.Fatalf("validation experience at %v is not after the last training one %v", tr.Experience.Timestamp, lastTrain)
		}
	}
}

// TestPseudoTransitions: Next links the steps of a plan and nothing else;
// negatives are terminal; the plan's reward arrives at its last step; the
// session's first transition is the plan's first step.
func TestPseudoTransitions(t *testing.T) {
	step := func(cap string, ctx []string, o featurestore.Outcome) featurestore.Experience {
		return featurestore.Experience{SelectedCapability: cap, ContextTools: ctx, Outcome: o, SessionID: "pseudo-q"}
	}
	sessions := []featurestore.PseudoSession{
		{ID: "pseudo-q", QueryID: "q", Episodes: [][]featurestore.Experience{
			{step("a", nil, featurestore.OutcomeSuccess), step("b", []string{"ta"}, featurestore.OutcomeSuccess), step("c", []string{"ta", "tb"}, featurestore.OutcomeSuccess)},
			{step("x", nil, featurestore.OutcomeFailure)},
			{step("y", []string{"ta"}, featurestore.OutcomeFailure)},
		}},
		{ID: "pseudo-r", QueryID: "r", Episodes: [][]featurestore.Experience{
			{step("d", nil, featurestore.OutcomeSuccess)},
			{step("z", nil, featurestore.OutcomeFailure)},
		}},
	}
	ts := PseudoTransitions(sessions, DefaultRewards())
	want := []struct {
		cap     string
		next    int
		reward  float64
		session string
	}{
		{"a", 1, 0, "pseudo-q"}, {"b", 2, 0, "pseudo-q"}, {"c", -1, 1, "pseudo-q"},
		{"x", -1, 0, "pseudo-q"}, {"y", -1, 0, "pseudo-q"},
		{"d", -1, 1, "pseudo-r"}, {"z", -1, 0, "pseudo-r"},
	}
	if len(ts) != len(want) {
		t.Fatalf("%d transitions, want %d", len(ts), len(want))
	}
	for i, w := range want {
		tr := ts[i]
		if tr.Experience.SelectedCapability != w.cap || tr.Next != w.next || tr.Reward != w.reward || tr.Session != w.session {
			t.Errorf("transition %d = %s next %d reward %v session %s, want %+v", i, tr.Experience.SelectedCapability, tr.Next, tr.Reward, tr.Session, w)
		}
	}
	// The split keeps a session's episodes together and remaps the links.
	var many []featurestore.PseudoSession
	for i := range 40 {
		s := sessions[0]
		s.ID = fmt.Sprintf("pseudo-q%d", i)
		many = append(many, s)
	}
	sp, err := SplitBySession(PseudoTransitions(many, DefaultRewards()), 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	for _, part := range [][]Transition{sp.Train, sp.Valid} {
		for i, tr := range part {
			if tr.Next >= 0 {
				links++
			}
			if tr.Next >= 0 && (part[tr.Next].Session != tr.Session || part[tr.Next].Experience.SelectedCapability != map[string]string{"a": "b", "b": "c"}[tr.Experience.SelectedCapability]) {
				t.Fatalf("transition %d (%s) links to %s of %s", i, tr.Experience.SelectedCapability, part[tr.Next].Experience.SelectedCapability, part[tr.Next].Session)
			}
		}
	}
	if links != 2*40 {
		t.Fatalf("%d links after the split, want 80 (a→b, b→c per session)", links)
	}
}

// HeldOutQueries names exactly the queries whose pseudo-experience sessions
// Load's split puts on the validation side, for several seeds and
// fractions, and refuses what it cannot compute.
func TestHeldOutQueriesMatchTheSplit(t *testing.T) {
	var caps []featurestore.Capability
	for c := range 10 {
		caps = append(caps, featurestore.Capability{ID: fmt.Sprintf("c%d", c)})
	}
	var qs []featurestore.Query
	for q := range 300 {
		qs = append(qs, featurestore.Query{ID: fmt.Sprintf("dev-%d", q), Intent: "x", Relevant: []string{fmt.Sprintf("c%d", q%10)}})
	}
	for _, src := range []Source{{}, {ValidFraction: 0.3, SplitSeed: 7}, {ValidFraction: 0.1, SplitSeed: 1, PseudoSeed: 5}} {
		exps := featurestore.PseudoExperiences(qs, caps, src.pseudoOptions())
		sp, err := SplitBySession(Transitions(exps, DefaultRewards()), src.validFraction(), src.SplitSeed)
		if err != nil {
			t.Fatal(err)
		}
		want := Sessions(sp.Valid)
		held, err := HeldOutQueries(qs, src)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, q := range held {
			got = append(got, src.pseudoOptions().Session(q.ID))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v: held out %d queries, the split validates on %d sessions (%v… vs %v…)", src, len(got), len(want), got[:3], want[:3])
		}
		if len(got) < 10 || len(got) > 150 {
			t.Fatalf("%+v: %d of 300 held out", src, len(got))
		}
	}
	var se *SplitError
	if _, err := HeldOutQueries(qs, Source{Temporal: true}); !errors.As(err, &se) {
		t.Errorf("temporal: %v, want a *SplitError", err)
	}
	if _, err := HeldOutQueries(qs, Source{ValidFraction: 1}); !errors.As(err, &se) {
		t.Errorf("fraction 1: %v, want a *SplitError", err)
	}
	if _, err := HeldOutQueries(qs[:1], Source{ValidFraction: 1e-9}); !errors.As(err, &se) {
		t.Errorf("nothing held out: %v, want a *SplitError", err)
	}
}
