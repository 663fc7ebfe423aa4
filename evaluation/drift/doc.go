// Package drift holds capflow's distribution drift checks: the two-sample
// Kolmogorov–Smirnov test applied to embedding distributions (per dimension
// or on random projections, with a multiple-testing correction) and the
// population stability index (PSI) on prediction scores. Functions are
// pure; bad input returns an error matching ErrInput, never a panic.
//
// KS p-values match scipy.stats.ks_2samp(method="auto"), two-sided: exact
// when both samples have at most 10,000 observations (scipy's rule), from
// the probability that a random lattice path leaves the band |x/n1 − y/n2|
// < D; above that — and, to bound the cost, for unequal samples near that
// size whose D is so large that p < ~1e-12 (KSResult.Exact says which) —
// the asymptotic Kolmogorov distribution Q(√(n1n2/(n1+n2))·D),
// scipy.stats.kstwobign — which is NOT what ks_2samp(method="asymp") uses
// (kstwo.sf(D, round(n1n2/(n1+n2))), a finite-n correction of the same
// limit), so above 10,000 observations p-values differ from scipy's by a
// term of order 1/√n.
//
// Embeddings runs one KS test per dimension (PerDimension: says which
// coordinates moved) or per random unit direction (RandomProjection: 32 by
// default, drawn from a seed; fewer tests, and it sees changes along
// directions no single axis carries, but a projection sees a shift s only
// as s·u, about |s|/√dim, so a shift confined to a few coordinates is
// better found per dimension). The p-values are corrected for multiple
// testing (Benjamini–Hochberg by default, or Bonferroni) and a test is
// flagged when its corrected p-value is below Alpha (0.01). An exact test
// costs about n1·n2·D cell updates, so very different samples are the
// slow case; the tests run on GOMAXPROCS goroutines.
//
// PSI = Σ (c_i − r_i)·ln(c_i/r_i) over bins whose edges are the reference
// sample's quantiles (numpy's default "linear" quantile) at k/B, k = 1..B−1;
// bins are right-closed, (e_{k−1}, e_k], the outer ones unbounded, and tied
// quantiles are merged, so a reference with many equal scores gets fewer
// bins. r_i, c_i are the fractions of the reference and current samples in
// bin i, each raised to Epsilon (default 1e-4) when smaller, so an empty bin
// adds a large but finite term instead of an infinite one; fractions are not
// renormalised after that.
package drift
