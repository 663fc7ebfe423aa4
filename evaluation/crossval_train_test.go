package evaluation

import (
	"context"
	"fmt"
	"testing"

	"github.com/capflow/capflow/models/ranker"
	"github.com/capflow/capflow/pipeline/train"
)

// TestTrainFoldsMatchCrossValidate: train.AssignFolds, with which
// `capflow evaluate --cv` deals logged sessions to folds, is CrossValidate's
// assignment of one query per session: the same sessions and seed give the
// same folds.
func TestTrainFoldsMatchCrossValidate(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		sessions, k int
		seed        uint64
	}{{23, 5, 9}, {160, 5, 0}, {7, 7, 3}, {40, 2, 12345}} {
		var qs []Query
		var ids []string
		for i := range tc.sessions {
			// Not in sorted order: both sort before they shuffle.
			id := fmt.Sprintf("session-%d", i*11%tc.sessions)
			ids = append(ids, id)
			qs = append(qs, Query{ID: "q-" + id, Session: id, Query: ranker.Query{Candidates: []string{"a", "b"}},
				Relevant: map[string]float64{"a": 1}})
		}
		rep, err := CrossValidate(ctx, qs, func(context.Context, []Query) (Ranker, error) {
			return fnRanker(func(ranker.Query, string) float64 { return 0 }), nil
		}, CVOptions{K: tc.k, Seed: tc.seed})
		if err != nil {
			t.Fatal(err)
		}
		folds, err := train.AssignFolds(ids, tc.k, tc.seed)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range rep.Folds {
			for _, g := range f.Groups {
				if folds[g] != i {
					t.Errorf("%+v: session %s is in CrossValidate's fold %d, train.AssignFolds' %d", tc, g, i, folds[g])
				}
			}
		}
		if n := len(folds); n != tc.sessions {
			t.Errorf("%+v: %d sessions assigned", tc, n)
		}
	}
}
