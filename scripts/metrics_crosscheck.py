#!/usr/bin/env python3
"""Reference values of capflow's evaluation metrics (Go package evaluation/metrics).

Usage: metrics_crosscheck.py IN.json OUT.json

IN.json (written by evaluation/metrics/crosscheck_test.go):
  {"ks": [1, 3, 5, 10], "bins": 15, "temperature": T,
   "catalog":  ["cap", ...],
   "rankings": [{"query_id": "q0", "candidates": ["cap", ...], "scores": [s, ...],
                 "relevant": {"cap": grade > 0, ...}}, ...],
   "fit":      [rankings to fit the temperature on, same shape]}

Every relevant item must be among its query's candidates (sklearn only sees
the candidates), and every query needs at least two candidates (ndcg_score).

OUT.json:
  {"versions": {...},
   "per_query": [{"rr", "ap", "ap_lrap", "ndcg", "ndcg_graded",
                  "hit": [per k], "ndcg_at": [per k], "ndcg_graded_at": [per k], "comp_at": [per k],
                  "top_k_accuracy": [per k, null where it does not apply],
                  "nll", "brier"}, ...],
   "aggregate": {metric name as Report.Map() spells it: value, plus "ece_numpy"},
   "fit": {"temperature_brentq", "temperature_minimize", "nll_at_brentq", "nll_at_minimize",
           "queries"}}

Conventions (the Go package's): ranks by descending score, ties in candidate
order (a stable argsort of -score). sklearn's ranking metrics break ties their
own way, so a query with tied scores is given its stable rank as the score
(tie-free, same order); without ties sklearn gets the raw scores.
  - NDCG: sklearn.metrics.ndcg_score(ignore_ties=True), binary labels and
    linear graded gains; per query, then averaged.
  - AP: sklearn average_precision_score and label_ranking_average_precision_score
    (equal to AP without ties); MAP is their mean over queries.
  - RR, Hit@k: numpy on the stable order (sklearn has no multi-relevant
    version); top_k_accuracy_score as a second check where a query has exactly
    one relevant item and k < candidates.
  - Probabilities: scipy.special.softmax(scores / T) per query, label 1 when
    relevant. Brier: brier_score_loss over all (query, candidate) pairs, and
    per query. ECE: calibration_curve(strategy="uniform") for the per-bin
    means, bin counts from the same binning; "ece_numpy" recomputes it with
    np.digitize(right=True) on the same edges. ece_top1: each query's top
    candidate.
  - Coverage and Gini of top-k counts over the catalog (zeros included), Gini
    by the mean-absolute-difference formula sum|c_i - c_j| / (2 n^2 mean c).
  - Temperature: NLL = mean over queries of the mean -log p of the relevant
    candidates; its minimiser found by brentq on dNLL/dbeta (beta = 1/T) and by
    minimize_scalar (bounded) on log T, over T in [1e-6, 1e6] x the widest
    score range of a query.
"""
import json
import math
import sys

import numpy as np
import scipy
import sklearn
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    label_ranking_average_precision_score,
    ndcg_score,
    top_k_accuracy_score,
)


def arrays(r):
    s = np.asarray(r["scores"], dtype=np.float64)
    cands = r["candidates"]
    rel = r["relevant"]
    missing = set(rel) - set(cands)
    if missing:
        raise SystemExit(f"query {r['query_id']}: relevant items not among candidates: {sorted(missing)}")
    grade = np.array([float(rel.get(c, 0.0)) for c in cands])
    return s, grade, grade > 0


def stable_order(s):
    return np.argsort(-s, kind="stable")


def sklearn_scores(s):
    """The raw scores when tie-free, else the stable rank as a score."""
    if len(np.unique(s)) == len(s):
        return s
    out = np.empty(len(s))
    out[stable_order(s)] = np.arange(len(s), 0, -1, dtype=np.float64)
    return out


def ece(p, y, bins):
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))


def ece_numpy(p, y, bins):
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.digitize(p, edges[1:-1], right=True)  # edges[i-1] < p <= edges[i]
    total = 0.0
    for b in range(bins):
        m = ids == b
        if m.any():
            total += m.sum() / len(p) * abs(y[m].mean() - p[m].mean())
    return float(total)


def gini(c):
    c = np.asarray(c, dtype=np.float64)
    if c.sum() == 0:
        return 0.0
    return float(np.abs(c[:, None] - c[None, :]).sum() / (2 * len(c) ** 2 * c.mean()))


def evaluate(req):
    ks, bins, temp = req["ks"], req["bins"], req["temperature"]
    catalog = {c: i for i, c in enumerate(req["catalog"])}
    counts = np.zeros((len(ks), len(catalog)))
    per_query, all_p, all_y, top_p, top_y = [], [], [], [], []
    for r in req["rankings"]:
        s, grade, y = arrays(r)
        n = len(s)
        order = stable_order(s)
        sk = sklearn_scores(s)
        hits = np.nonzero(y[order])[0]
        q = {
            "rr": 1.0 / (hits[0] + 1) if len(hits) else 0.0,
            "ap": float(average_precision_score(y.astype(int), sk)),
            "ap_lrap": float(label_ranking_average_precision_score([y.astype(int)], [sk])),
            "ndcg": float(ndcg_score([y.astype(float)], [sk], ignore_ties=True)),
            "ndcg_graded": float(ndcg_score([grade], [sk], ignore_ties=True)),
            "hit": [], "ndcg_at": [], "ndcg_graded_at": [], "comp_at": [], "top_k_accuracy": [],
        }
        single = int(y.sum()) == 1
        for ki, k in enumerate(ks):
            q["hit"].append(float(y[order[:k]].any()))
            # COMP@k: every relevant item among the first k (set inclusion).
            q["comp_at"].append(float(set(np.nonzero(y)[0]) <= set(order[:k].tolist())))
            q["ndcg_at"].append(float(ndcg_score([y.astype(float)], [sk], k=k, ignore_ties=True)))
            q["ndcg_graded_at"].append(float(ndcg_score([grade], [sk], k=k, ignore_ties=True)))
            if single and k < n and n > 2:
                q["top_k_accuracy"].append(float(top_k_accuracy_score(
                    [int(np.argmax(y))], [sk], k=k, labels=np.arange(n))))
            else:
                q["top_k_accuracy"].append(None)
            for j in order[:k]:
                counts[ki, catalog[r["candidates"][j]]] += 1
        p = softmax(s / temp)
        q["nll"] = float(-np.mean(log_softmax(s / temp)[y]))
        q["brier"] = float(brier_score_loss(y.astype(int), p))
        per_query.append(q)
        all_p.append(p)
        all_y.append(y.astype(float))
        top_p.append(p[order[0]])
        top_y.append(float(y[order[0]]))

    nq = len(per_query)
    P, Y = np.concatenate(all_p), np.concatenate(all_y)
    top_p, top_y = np.array(top_p), np.array(top_y)
    agg = {
        "queries": float(nq), "pairs": float(len(P)), "catalog_size": float(len(catalog)),
        "temperature": float(temp),
        "mrr": float(np.mean([q["rr"] for q in per_query])),
        "map": float(np.mean([q["ap"] for q in per_query])),
        "ndcg": float(np.mean([q["ndcg"] for q in per_query])),
        "ndcg_graded": float(np.mean([q["ndcg_graded"] for q in per_query])),
        "nll": float(np.mean([q["nll"] for q in per_query])),
        "brier": float(brier_score_loss(Y.astype(int), P)),
        "ece": ece(P, Y, bins),
        "ece_numpy": ece_numpy(P, Y, bins),
        "ece_top1": ece(top_p, top_y, bins),
    }
    for ki, k in enumerate(ks):
        agg[f"hit_at_{k}"] = float(np.mean([q["hit"][ki] for q in per_query]))
        agg[f"ndcg_at_{k}"] = float(np.mean([q["ndcg_at"][ki] for q in per_query]))
        agg[f"ndcg_graded_at_{k}"] = float(np.mean([q["ndcg_graded_at"][ki] for q in per_query]))
        agg[f"comp_at_{k}"] = float(np.mean([q["comp_at"][ki] for q in per_query]))
        agg[f"coverage_at_{k}"] = float(np.mean(counts[ki] > 0))
        agg[f"gini_at_{k}"] = gini(counts[ki])
    return per_query, agg


def fit(rankings):
    qs = []
    for r in rankings:
        s, _, y = arrays(r)
        if y.any():
            qs.append((s, y))
    width = max(float(np.ptp(s)) for s, _ in qs)

    def nll(t):
        return float(np.mean([-np.mean(log_softmax(s / t)[y]) for s, y in qs]))

    def grad(beta):
        return float(np.mean([softmax(beta * s) @ s - s[y].mean() for s, y in qs]))

    lo, hi = 1e-6 / width, 1e6 / width
    beta = brentq(grad, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    res = minimize_scalar(lambda u: nll(math.exp(u)), bounds=(math.log(1 / hi), math.log(1 / lo)),
                          method="bounded", options={"xatol": 1e-12, "maxiter": 1000})
    t_min = math.exp(res.x)
    return {"temperature_brentq": 1 / beta, "temperature_minimize": t_min,
            "nll_at_brentq": nll(1 / beta), "nll_at_minimize": nll(t_min), "queries": len(qs)}


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        req = json.load(f)
    per_query, agg = evaluate(req)
    out = {
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
        "per_query": per_query,
        "aggregate": agg,
        "fit": fit(req["fit"]) if req.get("fit") else None,
    }
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
