package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

// withCatalog is a fresh store holding the fixture's tools and capabilities
// but no experiences.
func (s *suite) withCatalog(t *testing.T) featurestore.Store {
	st := s.open(t)
	d := s.fixture()
	d.Experiences = nil
	s.write(t, st, d)
	return st
}

func (s *suite) all(t *testing.T, st featurestore.Store) []featurestore.Experience {
	t.Helper()
	exps, err := st.ExperiencesBetween(context.Background(), allFrom, allTo)
	require.NoError(t, err)
	return exps
}

func (s *suite) appendExperiences(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	e1 := s.exp("one", "cap.lookup", []string{"cap.mail", "cap.lookup"}, base, "s1")
	e1.UserFeedback = nil
	e1.IntentEmbedding = nil
	e2 := s.exp("two", "cap.mail", []string{"cap.mail"}, base.Add(time.Second), "s1")
	e2.Outcome = featurestore.OutcomeFailure
	e3 := s.exp("three", "cap.report", []string{"cap.report", "cap.research"}, base.Add(2*time.Second), "s2")
	e3.Outcome = featurestore.OutcomePartial
	e3.ContextTools = nil

	require.NoError(t, st.AppendExperiences(ctx, e1))
	require.NoError(t, st.AppendExperiences(ctx, e2, e3))
	require.NoError(t, st.AppendExperiences(ctx)) // nothing to do
	want := []featurestore.Experience{e1, e2, e3}
	assert.Equal(t, normExps(t, want, false), normExps(t, s.all(t, st), true))

	// An experience is identified by session, time, selected capability and
	// intent: appending it again (a retry) stores nothing new, even when
	// other fields differ.
	again := e2
	again.Outcome = featurestore.OutcomeSuccess
	require.NoError(t, st.AppendExperiences(ctx, e1, again))
	assert.Equal(t, normExps(t, want, false), normExps(t, s.all(t, st), true), "a re-appended experience is a no-op")
}

func (s *suite) appendAllOrNothing(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	require.NoError(t, st.AppendExperiences(ctx, s.exp("kept", "cap.mail", []string{"cap.mail"}, base, "s0")))
	before := s.all(t, st)

	cases := []struct {
		name   string
		mutate func(e *featurestore.Experience)
	}{
		{"unknown selected capability", func(e *featurestore.Experience) {
			e.SelectedCapability, e.CandidateIDs = "cap.nope", []string{"cap.nope"}
		}},
		{"unknown candidate", func(e *featurestore.Experience) { e.CandidateIDs = []string{"cap.lookup", "cap.nope"} }},
		{"unknown context tool", func(e *featurestore.Experience) { e.ContextTools = []string{"t.nope"} }},
		{"bad outcome", func(e *featurestore.Experience) { e.Outcome = "" }},
		{"rank mismatch", func(e *featurestore.Experience) { e.Rank = 2; e.CandidateIDs = []string{"cap.lookup", "cap.mail"} }},
		{"feedback out of range", func(e *featurestore.Experience) { e.UserFeedback = intp(6) }},
		{"no timestamp", func(e *featurestore.Experience) { e.Timestamp = time.Time{} }},
		{"no session", func(e *featurestore.Experience) { e.SessionID = "" }},
		{"wrong embedding dimension", func(e *featurestore.Experience) { e.IntentEmbedding = vec(s.cfg.TextDim-1, 1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := s.exp("good", "cap.lookup", []string{"cap.lookup"}, base.Add(time.Hour), "s1")
			bad := s.exp("bad", "cap.lookup", []string{"cap.lookup"}, base.Add(2*time.Hour), "s1")
			tc.mutate(&bad)
			requireRecordError(t, st.AppendExperiences(ctx, good, bad), "experience", "#1")
			assert.Equal(t, normExps(t, before, true), normExps(t, s.all(t, st), true), "store changed by a refused append")
		})
	}
}

// experiencesBetween: from is inclusive, to exclusive, and the bounds may be
// in any zone.
func (s *suite) experiencesBetween(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	t0 := base.Add(10 * 24 * time.Hour)
	var exps []featurestore.Experience
	for i, name := range []string{"a", "b", "c"} {
		exps = append(exps, s.exp(name, "cap.mail", []string{"cap.mail"}, t0.Add(time.Duration(i)*time.Hour), "s"))
	}
	require.NoError(t, st.AppendExperiences(ctx, exps[2], exps[0], exps[1]))

	intents := func(from, to time.Time) []string {
		t.Helper()
		got, err := st.ExperiencesBetween(ctx, from, to)
		require.NoError(t, err)
		out := []string{}
		for _, e := range got {
			out = append(out, e.Intent)
		}
		return out
	}
	h := time.Hour
	assert.Equal(t, []string{"a", "b"}, intents(t0, t0.Add(2*h)))
	assert.Equal(t, []string{"b", "c"}, intents(t0.Add(h), t0.Add(2*h+time.Nanosecond)))
	assert.Equal(t, []string{"a", "b", "c"}, intents(t0.In(kolkata), t0.Add(3*h).In(kolkata)))
	assert.Equal(t, []string{"b"}, intents(t0.Add(time.Nanosecond), t0.Add(2*h-time.Nanosecond)))
	assert.Empty(t, intents(t0.Add(h), t0.Add(h)))
	assert.Empty(t, intents(t0.Add(3*h), t0.Add(4*h)))
}

func (s *suite) experiencesBySession(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	t0 := base
	mk := func(name string, offset time.Duration, session string) featurestore.Experience {
		return s.exp(name, "cap.mail", []string{"cap.mail"}, t0.Add(offset), session)
	}
	require.NoError(t, st.AppendExperiences(ctx,
		mk("a3", 3*time.Hour, "sess-A"), mk("b0", 0, "sess-B"), mk("a1", time.Hour, "sess-A"),
		mk("x", 90*time.Minute, "sess-A2"), mk("y", 90*time.Minute, "sess-")))
	require.NoError(t, st.AppendExperiences(ctx, mk("a2", 2*time.Hour, "sess-A")))

	intents := func(session string) []string {
		t.Helper()
		got, err := st.ExperiencesBySession(ctx, session)
		require.NoError(t, err)
		out := []string{}
		for _, e := range got {
			assert.Equal(t, session, e.SessionID)
			out = append(out, e.Intent)
		}
		return out
	}
	assert.Equal(t, []string{"a1", "a2", "a3"}, intents("sess-A"))
	assert.Equal(t, []string{"b0"}, intents("sess-B"))
	assert.Equal(t, []string{"y"}, intents("sess-"))
	assert.Empty(t, intents("sess-nope"))
}

func (s *suite) timestampsUTC(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	ts := time.Date(2025, 6, 1, 23, 30, 0, 0, kolkata) // 18:00 UTC
	require.NoError(t, st.AppendExperiences(ctx, s.exp("zoned", "cap.mail", []string{"cap.mail"}, ts, "tz")))
	imported := s.exp("zoned import", "cap.mail", []string{"cap.mail"}, ts.Add(time.Minute), "tz")
	imported.ContextTools = []string{"t.mail"}
	s.write(t, st, &featurestore.Dataset{
		Tools:        []featurestore.Tool{{ID: "t.mail", Name: "mail", Description: "send mail"}},
		Capabilities: []featurestore.Capability{{ID: "cap.mail", Name: "mail", Members: []string{"t.mail"}}},
		Experiences:  []featurestore.Experience{imported},
	})

	got, err := st.ExperiencesBySession(ctx, "tz")
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i, e := range got {
		assert.Equal(t, "UTC", e.Timestamp.Location().String(), "experience %d", i)
	}
	assert.True(t, got[0].Timestamp.Equal(ts))
	assert.Equal(t, 18, got[0].Timestamp.Hour())
	assert.True(t, got[1].Timestamp.Equal(ts.Add(time.Minute)))

	// Window bounds given in another zone select the same instants.
	got, err = st.ExperiencesBetween(ctx, ts.UTC(), ts.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "zoned", got[0].Intent)
}

func (s *suite) usageCounts(t *testing.T) {
	st := s.withCatalog(t)
	ctx := context.Background()
	now := base.Add(100 * 24 * time.Hour)
	day := 24 * time.Hour
	at := func(sel string, ago time.Duration) featurestore.Experience {
		return s.exp("use "+sel, sel, []string{sel}, now.Add(-ago), "usage")
	}
	require.NoError(t, st.AppendExperiences(ctx,
		at("cap.lookup", time.Hour), at("cap.lookup", 2*day), at("cap.lookup", 10*day+12*time.Hour),
		at("cap.lookup", 40*day), at("cap.lookup", -time.Hour), // outside every window
		at("cap.research", 6*day), at("cap.research", 20*day),
		at("cap.report", 31*day), // outside every window
	))

	got, err := st.UsageCounts(ctx, now.In(kolkata))
	require.NoError(t, err)
	assert.Equal(t, featurestore.Usage{Count1d: 1, Count7d: 2, Count30d: 3}, got["cap.lookup"])
	assert.Equal(t, featurestore.Usage{Count1d: 0, Count7d: 1, Count30d: 2}, got["cap.research"])
	assert.Equal(t, featurestore.Usage{}, got["cap.report"])
	assert.Equal(t, featurestore.Usage{}, got["cap.mail"])

	// Another now moves the windows.
	got, err = st.UsageCounts(ctx, now.Add(-9*day))
	require.NoError(t, err)
	assert.Equal(t, featurestore.Usage{Count1d: 0, Count7d: 1, Count30d: 1}, got["cap.lookup"])
	assert.Equal(t, featurestore.Usage{Count1d: 0, Count7d: 0, Count30d: 1}, got["cap.research"])
	assert.Equal(t, featurestore.Usage{Count1d: 0, Count7d: 0, Count30d: 1}, got["cap.report"])
}
