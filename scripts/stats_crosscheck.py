#!/usr/bin/env python3
"""Reference answers for capflow's evaluation/stats and evaluation/drift.

Usage: stats_crosscheck.py IN.json OUT.json

IN.json (written by the Go cross-check tests) holds lists of cases under any
of these keys; OUT.json has the same keys, one answer per case, in order.
Alternatives are spelled as scipy spells them: "two-sided", "greater",
"less" (arm 1 minus arm 2). Infinite interval ends, and answers a reference could not give (NaN, e.g.
statsmodels' solver not converging), are written as null.

  ztest:      {count1, nobs1, count2, nobs2, alternative, alpha}
              -> statsmodels proportions_ztest (pooled) {z, p} and
                 confint_proportions_2indep(method="wald", compare="diff")
                 {lo, hi}; a one-sided interval is the matching end of the
                 two-sided one at 2*alpha.
  welch:      {x, y, alternative, alpha}
              -> scipy ttest_ind(equal_var=False) {t, p, df, lo, hi}
  welch_stats:{mean1, sd1, n1, mean2, sd2, n2, alternative}
              -> scipy ttest_ind_from_stats(equal_var=False) {t, p}
  power:      {baseline, mde, alpha, power, n_go}
              -> h = proportion_effectsize(baseline + mde, baseline),
                 NormalIndPower().solve_power(h, alpha=, power=, ratio=1,
                 alternative="two-sided") {h, nobs1}, and the power
                 NormalIndPower gives at the Go answer n_go {power_at_go}.
  mde:        {baseline, n, alpha, power, mde_go}
              -> solve_power(effect_size=None, nobs1=n, ...) {h, mde}
                 (mde = sin(asin(sqrt(baseline)) + h/2)**2 - baseline), and
                 the power at the Go answer {power_at_go} and at its own
                 {power_at_sm} (its solver stops early, see the Go test).
  ks:         {x, y}
              -> scipy ks_2samp two-sided {d, p_auto, p_exact, p_asymp}
                 and kstwobign.sf(sqrt(n1 n2/(n1+n2)) d) {p_kstwobign}.
  multitest:  {p, method: "fdr_bh"|"bonferroni"}
              -> statsmodels multipletests {corrected}
  psi:        {ref, cur, bins, eps}
              -> numpy: edges = unique(quantile(ref, k/bins)), bins
                 right-closed (searchsorted side="left"), fractions floored
                 at eps, PSI = sum((c - r) * log(c / r))
                 {psi, edges, ref_frac, cur_frac}
  versions are reported under "versions".
"""
import json
import math
import sys

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)

SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def finite(v):
    v = float(v)
    return v if math.isfinite(v) else None


def ztest(c):
    z, p = proportions_ztest(
        [c["count1"], c["count2"]], [c["nobs1"], c["nobs2"]],
        alternative=SM_ALT[c["alternative"]])
    alt, alpha = c["alternative"], c["alpha"]
    args = (c["count1"], c["nobs1"], c["count2"], c["nobs2"])
    if alt == "two-sided":
        lo, hi = confint_proportions_2indep(*args, method="wald", compare="diff", alpha=alpha)
    else:
        lo, hi = confint_proportions_2indep(*args, method="wald", compare="diff", alpha=2 * alpha)
        if alt == "greater":
            hi = math.inf
        else:
            lo = -math.inf
    return {"z": float(z), "p": float(p), "lo": finite(lo), "hi": finite(hi)}


def welch(c):
    r = stats.ttest_ind(c["x"], c["y"], equal_var=False, alternative=c["alternative"])
    ci = r.confidence_interval(confidence_level=1 - c["alpha"])
    return {"t": float(r.statistic), "p": float(r.pvalue), "df": float(r.df),
            "lo": finite(ci.low), "hi": finite(ci.high)}


def welch_stats(c):
    r = stats.ttest_ind_from_stats(c["mean1"], c["sd1"], c["n1"], c["mean2"], c["sd2"], c["n2"],
                                   equal_var=False, alternative=c["alternative"])
    return {"t": float(r.statistic), "p": float(r.pvalue)}


def power(c):
    h = proportion_effectsize(c["baseline"] + c["mde"], c["baseline"])
    pw = NormalIndPower()
    n = pw.solve_power(effect_size=h, nobs1=None, alpha=c["alpha"], power=c["power"],
                       ratio=1.0, alternative="two-sided")
    at_go = pw.power(effect_size=h, nobs1=c["n_go"], alpha=c["alpha"], ratio=1.0,
                     alternative="two-sided")
    return {"h": float(h), "nobs1": float(n), "power_at_go": float(at_go)}


def mde(c):
    pw = NormalIndPower()
    h = pw.solve_power(effect_size=None, nobs1=c["n"], alpha=c["alpha"], power=c["power"],
                       ratio=1.0, alternative="two-sided")
    h = abs(float(np.asarray(h).ravel()[0]))
    p1 = c["baseline"]
    m = math.sin(math.asin(math.sqrt(p1)) + h / 2) ** 2 - p1
    h_go = proportion_effectsize(p1 + c["mde_go"], p1)
    at_go = pw.power(effect_size=h_go, nobs1=c["n"], alpha=c["alpha"], ratio=1.0,
                     alternative="two-sided")
    at_sm = pw.power(effect_size=h, nobs1=c["n"], alpha=c["alpha"], ratio=1.0,
                     alternative="two-sided")
    return {"h": h, "mde": m, "power_at_go": float(at_go), "power_at_sm": float(at_sm)}


def ks(c):
    x, y = np.asarray(c["x"], float), np.asarray(c["y"], float)
    auto = stats.ks_2samp(x, y, method="auto")
    exact = stats.ks_2samp(x, y, method="exact")
    asymp = stats.ks_2samp(x, y, method="asymp")
    en = len(x) * len(y) / (len(x) + len(y))
    return {"d": float(auto.statistic), "p_auto": float(auto.pvalue),
            "p_exact": float(exact.pvalue), "p_asymp": float(asymp.pvalue),
            "p_kstwobign": float(stats.kstwobign.sf(math.sqrt(en) * auto.statistic))}


def multitest(c):
    _, corrected, _, _ = multipletests(c["p"], alpha=0.05, method=c["method"])
    return {"corrected": [float(v) for v in corrected]}


def psi(c):
    ref, cur = np.asarray(c["ref"], float), np.asarray(c["cur"], float)
    bins, eps = c["bins"], c["eps"]
    edges = np.unique(np.quantile(ref, [k / bins for k in range(1, bins)]))

    def frac(x):
        counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
        return np.maximum(counts / len(x), eps)

    r, q = frac(ref), frac(cur)
    return {"psi": float(np.sum((q - r) * np.log(q / r))), "edges": edges.tolist(),
            "ref_frac": r.tolist(), "cur_frac": q.tolist()}


HANDLERS = {"ztest": ztest, "welch": welch, "welch_stats": welch_stats, "power": power,
            "mde": mde, "ks": ks, "multitest": multitest, "psi": psi}


def clean(v):
    """NaN (a reference that failed, e.g. a solver that did not converge)
    and infinities become null: JSON has neither."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = {k: [HANDLERS[k](c) for c in v] for k, v in cases.items()}
    out["versions"] = {"numpy": np.__version__, "scipy": scipy.__version__,
                       "statsmodels": statsmodels.__version__}
    with open(sys.argv[2], "w") as f:
        json.dump(clean(out), f, allow_nan=False)


if __name__ == "__main__":
    main()
