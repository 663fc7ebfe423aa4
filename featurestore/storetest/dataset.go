package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/capflow/capflow/featurestore"
)

func withLevels(d *featurestore.Dataset) *featurestore.Dataset {
	for i := range d.Capabilities {
		d.Capabilities[i].Level = wantLevels[d.Capabilities[i].ID]
	}
	return d
}

func (s *suite) writeDatasetRoundTrip(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())

	got := take(t, st)
	assert.Equal(t, expected(t, withLevels(s.fixture())), got)
	levels := map[string]int{}
	for _, c := range got.Capabilities {
		levels[c.ID] = c.Level
	}
	assert.Equal(t, wantLevels, levels, "capability levels")
	for _, q := range got.Queries {
		if q.Timestamp != nil {
			assert.Equal(t, "UTC", q.Timestamp.Location().String(), "query %s timestamp zone", q.ID)
		}
	}
}

func (s *suite) writeDatasetIdempotent(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	first := take(t, st)
	s.write(t, st, s.fixture())
	second := take(t, st)
	assert.Len(t, second.Tools, 4)
	assert.Len(t, second.Capabilities, 4)
	assert.Len(t, second.Experiences, 3)
	assert.Len(t, second.Queries, 2)
	assert.Equal(t, first, second)
}

// writeDatasetUpserts: a record written again with the same id and new
// content replaces the old one.
func (s *suite) writeDatasetUpserts(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	s.write(t, st, &featurestore.Dataset{
		Tools:        []featurestore.Tool{{ID: "t.fetch", Name: "fetch", Description: "fetch a URL, following redirects"}, {ID: "t.mail", Name: "mail", Description: "send mail"}},
		Capabilities: []featurestore.Capability{{ID: "cap.mail", Name: "notify", Members: []string{"t.mail"}, SuccessRate: f64(0.5)}},
	})
	want := withLevels(s.fixture())
	want.Tools[1].Description = "fetch a URL, following redirects"
	want.Capabilities[3].Name = "notify"
	want.Capabilities[3].SuccessRate = f64(0.5)
	assert.Equal(t, expected(t, want), take(t, st))
}

// writeDatasetRelevels: rewriting a capability so that its level changes
// changes the levels of the stored capabilities that hold it, even when the
// second dataset does not contain them.
func (s *suite) writeDatasetRelevels(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	s.write(t, st, &featurestore.Dataset{
		Tools: []featurestore.Tool{{ID: "t.search", Name: "search", Description: "web search"}, {ID: "t.mail", Name: "mail", Description: "send mail"}},
		Capabilities: []featurestore.Capability{
			{ID: "cap.mail", Name: "mail", Members: []string{"t.mail"}},
			{ID: "cap.lookup", Name: "lookup", Members: []string{"t.search", "cap.mail"}},
		},
	})
	caps, err := st.Capabilities(context.Background())
	require.NoError(t, err)
	levels := map[string]int{}
	for _, c := range caps {
		levels[c.ID] = c.Level
	}
	assert.Equal(t, map[string]int{"cap.mail": 0, "cap.lookup": 1, "cap.research": 2, "cap.report": 3}, levels)
}

// writeDatasetAllOrNothing: a dataset with one bad record is refused with
// an error naming it, and the store is as it was.
func (s *suite) writeDatasetAllOrNothing(t *testing.T) {
	// good is new valid content that must not appear after a refused write.
	// Its experiences reference only the dataset's own records, as Validate
	// resolves ids within the dataset.
	good := func() *featurestore.Dataset {
		d := &featurestore.Dataset{
			Tools:        []featurestore.Tool{{ID: "t.new", Name: "new"}, {ID: "t.fetch", Name: "fetch", Description: "changed"}},
			Capabilities: []featurestore.Capability{{ID: "cap.new", Name: "new", Members: []string{"t.new"}}},
			Experiences: []featurestore.Experience{
				s.exp("new intent", "cap.new", []string{"cap.new"}, base.Add(48*time.Hour), "sess-new"),
				s.exp("another", "cap.new", []string{"cap.new"}, base.Add(49*time.Hour), "sess-new"),
			},
			Queries: []featurestore.Query{{ID: "q.new", Intent: "new", Relevant: []string{"cap.new"}}},
		}
		for i := range d.Experiences {
			d.Experiences[i].ContextTools = []string{"t.new"}
		}
		return d
	}
	cases := []struct {
		name   string
		mutate func(d *featurestore.Dataset)
		kind   string
		ids    []string
	}{
		{"unknown member", func(d *featurestore.Dataset) {
			d.Capabilities = append(d.Capabilities, featurestore.Capability{ID: "cap.bad", Name: "bad", Members: []string{"t.new", "t.nope"}})
		}, "capability", []string{"cap.bad"}},
		{"cycle", func(d *featurestore.Dataset) {
			d.Capabilities = append(d.Capabilities,
				featurestore.Capability{ID: "cap.x", Name: "x", Members: []string{"cap.y", "t.new"}},
				featurestore.Capability{ID: "cap.y", Name: "y", Members: []string{"cap.x"}})
		}, "capability", []string{"cap.x", "cap.y"}},
		{"bad outcome", func(d *featurestore.Dataset) { d.Experiences[1].Outcome = "maybe" }, "experience", []string{"#1"}},
		{"wrong intent embedding dimension", func(d *featurestore.Dataset) {
			d.Experiences[1].IntentEmbedding = vec(s.cfg.TextDim+1, 1)
		}, "experience", []string{"#1"}},
		{"unknown relevant capability", func(d *featurestore.Dataset) { d.Queries[0].Relevant = []string{"cap.nope"} }, "query", []string{"q.new"}},
		{"unknown called tool", func(d *featurestore.Dataset) { d.Queries[0].Calls = []string{"t.new", "t.nope"} }, "query", []string{"q.new"}},
		{"oversized text", func(d *featurestore.Dataset) {
			d.Tools = append(d.Tools, featurestore.Tool{ID: "t.big", Name: strings.Repeat("x", s.cfg.MaxTextLen+1)})
		}, "tool", []string{"t.big"}},
		{"success rate out of range", func(d *featurestore.Dataset) { d.Capabilities[0].SuccessRate = f64(1.5) }, "capability", []string{"cap.new"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := s.open(t)
			s.write(t, st, s.fixture())
			before := take(t, st)

			d := good()
			tc.mutate(d)
			err := st.WriteDataset(context.Background(), d)
			require.Error(t, err)
			rerrs := recordErrors(err)
			require.NotEmpty(t, rerrs, "want record errors, got %T: %v", err, err)
			found := false
			for _, r := range rerrs {
				for _, id := range tc.ids {
					found = found || (r.Kind == tc.kind && r.ID == id)
				}
			}
			assert.True(t, found, "no error names %s %v: %v", tc.kind, tc.ids, err)
			assert.Equal(t, before, take(t, st), "store changed by a refused write")
		})
	}
	// The same dataset without the bad record is accepted: the cases fail
	// for the bad record alone.
	t.Run("control", func(t *testing.T) {
		st := s.open(t)
		s.write(t, st, s.fixture())
		s.write(t, st, good())
		got := take(t, st)
		assert.Len(t, got.Tools, 5)
		assert.Len(t, got.Experiences, 5)
	})
}

func (s *suite) capabilitiesByID(t *testing.T) {
	st := s.open(t)
	s.write(t, st, s.fixture())
	ctx := context.Background()

	ids := []string{"cap.report", "cap.lookup", "cap.mail", "cap.research"}
	got, err := st.CapabilitiesByID(ctx, ids)
	require.NoError(t, err)
	require.Len(t, got, len(ids))
	byID := map[string]featurestore.Capability{}
	for _, c := range withLevels(s.fixture()).Capabilities {
		byID[c.ID] = c
	}
	for i, id := range ids {
		assert.Equal(t, byID[id], got[i], "position %d", i)
	}

	got, err = st.CapabilitiesByID(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = st.CapabilitiesByID(ctx, []string{"cap.lookup", "cap.nope"})
	requireNotFound(t, err, "capability", "cap.nope")
}
