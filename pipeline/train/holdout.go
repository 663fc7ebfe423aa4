package train

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/capflow/capflow/featurestore"
)

// HeldOutQueries returns the queries of qs that Load, given src, holds out
// for validation when it trains on their pseudo-experiences: a query is one
// session (featurestore.PseudoOptions.Session), and SplitBySession puts it
// on the validation side by its hash alone, so the answer for one query
// depends neither on the others nor on the catalog. Training never fits
// those queries (it validates and stops early on them), which makes them
// the set to select models on without touching the reported split.
//
// src.ValidFraction (0: 0.2) and src.SplitSeed must be the training run's
// (its params ParamValidFraction, ParamSplitSeed). A temporal split (src.Temporal) holds out the latest
// sessions, which depends on every query: that is a *SplitError, as is a
// fraction outside (0, 1) or a result with no query.
func HeldOutQueries(qs []featurestore.Query, src Source) ([]featurestore.Query, error) {
	if src.Temporal {
		return nil, &SplitError{Reason: "held-out queries of a temporal split cannot be computed query by query (train with the session split)"}
	}
	frac := src.validFraction()
	if !(frac > 0 && frac < 1) {
		return nil, &SplitError{Reason: fmt.Sprintf("valid fraction must be in (0,1), got %v", frac)}
	}
	opts := src.pseudoOptions()
	var out []featurestore.Query
	for _, q := range qs {
		if heldOut(opts.Session(q.ID), frac, src.SplitSeed) {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		return nil, &SplitError{Reason: fmt.Sprintf("none of the %d queries is held out at valid fraction %v, split seed %d", len(qs), frac, src.SplitSeed)}
	}
	return out, nil
}

// TrainedOn returns the queries of qs that a train stage run fitted, read
// from the run's params: those with its pseudo prefix (ParamPseudoPrefix)
// that its split did not hold out. Under a temporal split it returns every
// query with the prefix, since which of them were held out depends on all
// of them. known is false when the params do not say: a run logged before
// they were, or not a train stage run. Unreadable split params are a
// *SplitError.
func TrainedOn(params map[string]string, qs []featurestore.Query) (trained []featurestore.Query, known bool, err error) {
	prefix, ok := params[ParamPseudoPrefix]
	if !ok {
		return nil, false, nil
	}
	if prefix == "" {
		return nil, true, nil // logged experiences: no query was trained on
	}
	var src Source
	switch params[ParamSplit] {
	case SplitBySessionHash:
	case SplitByTime:
		src.Temporal = true
	default:
		return nil, false, nil
	}
	if src.ValidFraction, err = strconv.ParseFloat(params[ParamValidFraction], 64); err != nil {
		return nil, false, &SplitError{Reason: fmt.Sprintf("param %s: %v", ParamValidFraction, err)}
	}
	if src.SplitSeed, err = strconv.ParseUint(params[ParamSplitSeed], 10, 64); err != nil {
		return nil, false, &SplitError{Reason: fmt.Sprintf("param %s: %v", ParamSplitSeed, err)}
	}
	var withPrefix []featurestore.Query
	for _, q := range qs {
		if strings.HasPrefix(q.ID, prefix) {
			withPrefix = append(withPrefix, q)
		}
	}
	if len(withPrefix) == 0 || src.Temporal {
		return withPrefix, true, nil
	}
	frac := src.validFraction()
	if !(frac > 0 && frac < 1) {
		return nil, false, &SplitError{Reason: fmt.Sprintf("param %s: valid fraction must be in (0,1), got %v", ParamValidFraction, frac)}
	}
	opts := src.pseudoOptions()
	for _, q := range withPrefix {
		if !heldOut(opts.Session(q.ID), frac, src.SplitSeed) {
			trained = append(trained, q)
		}
	}
	return trained, true, nil
}
