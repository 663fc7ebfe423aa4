"""Independent reference for evaluation/counterfactual (run by crosscheck_test.go).

Reads a JSON case (rounds, policy, clip, smoothing, folds, shrinkage) and writes
the estimates. Written from the package documentation's formulas, not from the
Go code: the position model is the MAP of the posterior found by a generic
optimiser (scipy BFGS on log θ), not by the MM iteration,
then polished by solving ∇ = 0 (scipy root).
"""
import json
import sys

import numpy as np
from scipy.optimize import minimize, root


def policy_probs(scores, kind, temp, eps):
    s = np.asarray(scores, float)
    if kind == "softmax":
        p = np.exp((s - s.max()) / temp)
    else:
        p = (s == s.max()).astype(float)
    p /= p.sum()
    return (1 - eps) * p + eps / len(s)


def fit_position(ranks, lengths, alpha):
    k = max(lengths)
    ranks, lengths = np.asarray(ranks), np.asarray(lengths)

    # −log posterior in log θ; Gamma(1+α, α) prior: α·log θ − α·θ.
    def neg(lt):
        th = np.exp(lt)
        cum = np.concatenate([[0.0], np.cumsum(th)])
        ll = np.sum(lt[ranks - 1]) - np.sum(np.log(cum[lengths]))
        return -(ll + np.sum(alpha * lt - alpha * th))

    def grad(lt):
        th = np.exp(lt)
        cum = np.concatenate([[0.0], np.cumsum(th)])
        g = np.bincount(ranks - 1, minlength=k).astype(float)
        inv = np.bincount(lengths, weights=1 / cum[lengths], minlength=k + 1)[1:]
        g -= th * np.cumsum(inv[::-1])[::-1]  # Σ_{n ≥ j} lists/S_n
        g += alpha - alpha * th
        return -g

    res = minimize(neg, np.zeros(k), jac=grad, method="BFGS", options={"gtol": 1e-11, "maxiter": 10000})
    # Polish: solve ∇ = 0 from BFGS's answer (with α > 0 the root is unique).
    sol = root(grad, res.x, method="lm", options={"xtol": 1e-15, "ftol": 1e-15})
    best = sol.x if np.abs(grad(sol.x)).max() < np.abs(grad(res.x)).max() else res.x
    return np.exp(best)


def mean_reward(rounds, idx, m):
    g = np.mean([rounds[i]["reward"] for i in idx])
    sums, counts = {}, {}
    for i in idx:
        r = rounds[i]
        a = r["candidates"][r["rank"] - 1]
        sums[a] = sums.get(a, 0.0) + r["reward"]
        counts[a] = counts.get(a, 0) + 1
    return {a: (sums[a] + m * g) / (counts[a] + m) for a in sums}, g


def main():
    case = json.load(open(sys.argv[1]))
    rounds = case["rounds"]
    n = len(rounds)
    theta = fit_position([r["rank"] for r in rounds], [len(r["candidates"]) for r in rounds], case["smoothing"])
    folds = case["folds"]
    models = [mean_reward(rounds, [j for j in range(n) if j % folds != f], case["shrinkage"]) for f in range(folds)]

    pi, mu, r, q_pi, q_a = (np.zeros(n) for _ in range(5))
    for i, rd in enumerate(rounds):
        p = policy_probs(rd["scores"], case["kind"], case["temperature"], case["epsilon"])
        k = rd["rank"] - 1
        nc = len(rd["candidates"])
        pi[i], r[i] = p[k], rd["reward"]
        mu[i] = rd["propensity"] if rd["propensity"] > 0 else theta[k] / theta[:nc].sum()
        m, g = models[i % folds]
        q = np.array([m.get(c, g) for c in rd["candidates"]])
        q_pi[i], q_a[i] = p @ q, q[k]

    raw = pi / mu
    w = np.minimum(raw, case["clip"])
    t_ips = w * r
    snips = t_ips.sum() / w.sum()
    t_dr = q_pi + w * (r - q_a)
    out = {
        "ips": t_ips.mean(), "ips_se": t_ips.std(ddof=1) / np.sqrt(n),
        "snips": snips, "snips_se": np.sqrt(np.sum(w**2 * (r - snips) ** 2)) / w.sum(),
        "dr": t_dr.mean(), "dr_se": t_dr.std(ddof=1) / np.sqrt(n),
        "dm": q_pi.mean(), "ess": w.sum() ** 2 / np.sum(w**2),
        "clipped": float(np.mean(raw > case["clip"])), "max_weight": raw.max(),
        "mu_longest": list(theta / theta.sum()),
    }
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
