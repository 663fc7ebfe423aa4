// Package stats holds capflow's A/B test statistics: the two-proportion
// z-test, Welch's t-test, and sample size and minimum detectable effect for
// a conversion-rate experiment. Every function is a pure function of its
// arguments; bad input returns a typed error (see ErrInput), never a panic.
//
// Conventions, chosen to match the references in scripts/stats_crosscheck.py:
//
//   - Differences are arm 1 minus arm 2 (pass treatment as arm 1). Greater
//     tests "arm 1 > arm 2", Less tests "arm 1 < arm 2".
//   - Confidence intervals are at level 1−α and follow the alternative:
//     two-sided gives [Lo, Hi]; Greater gives [Lo, +Inf); Less gives
//     (−Inf, Hi] — the interval that agrees with the one-sided test.
//   - The z-test uses the pooled standard error (statsmodels
//     proportions_ztest); its interval uses the unpooled (Wald) standard
//     error (statsmodels confint_proportions_2indep, method="wald").
//   - Welch's t-test matches scipy.stats.ttest_ind(equal_var=False); its
//     Summary form takes the sample standard deviation (ddof = 1), like
//     scipy.stats.ttest_ind_from_stats.
//   - Sample size and minimum detectable effect use Cohen's h,
//     h = 2·asin√p2 − 2·asin√p1, with statsmodels' NormalIndPower
//     (two-sided, equal arms), whose power counts both rejection tails:
//     power = Φ(h√(n/2) − z) + Φ(−h√(n/2) − z), z = Φ⁻¹(1 − α/2).
//     The equation is solved to machine precision, not by the textbook
//     formula n = 2((z + z_power)/h)², which drops the second tail.
package stats
