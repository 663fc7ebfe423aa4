#!/usr/bin/env python3
"""PecanPy side of `make bench-node2vec` (driven by cmd/bench-node2vec).

Embeds a weighted undirected edge list (lines "u<TAB>v<TAB>w") with PecanPy's
walks and gensim's skip-gram, the way PecanPy's own CLI does, under the
settings the Go side passes, and writes the vectors in word2vec text format.

Timed: transition-probability precomputation + walks + Word2Vec (the work
capflow's node2vec.Train does). Not timed: interpreter start-up, imports,
reading the edge list, writing the vectors. numba compiles PecanPy's walk
kernels on first use; the pipeline therefore runs `runs` times in this
process on fresh graph objects and the LAST run is the steady-state figure
(cold_s, the first run's time, includes the JIT compilation).

Usage: bench_node2vec_pecanpy.py '{"edges": path, "out": path, "mode": "PreComp",
        "p": 1, "q": 1, "walk_nodes": 15, "walks_per_node": 40, "window": 5,
        "dim": 64, "negative": 5, "epochs": 1, "workers": 2, "seed": 1,
        "alpha": 0.025, "min_alpha": 2.5e-06, "sample": 0, "runs": 2}'
Prints one JSON line on stdout:
  {"cold_s": ..., "warm_s": ..., "walk_s": ..., "w2v_s": ..., "walks": ...,
   "tokens": ..., "vectors": ..., "mode": ...}
"""

import json
import os
import sys
import time


def main():
    cfg = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    # numba's thread pool size is fixed at import: give it the same number of
    # threads as gensim gets workers.
    os.environ.setdefault("NUMBA_NUM_THREADS", str(cfg["workers"]))
    from gensim.models import Word2Vec
    from pecanpy import pecanpy

    mode = getattr(pecanpy, cfg["mode"])
    timings = []
    for run in range(cfg.get("runs", 2)):
        g = mode(cfg["p"], cfg["q"], cfg["workers"], False, random_state=cfg["seed"] + run)
        g.read_edg(cfg["edges"], weighted=True, directed=False, delimiter="\t")

        t0 = time.perf_counter()
        g.preprocess_transition_probs()
        g._preprocessed = True
        # PecanPy's walk_length counts steps, capflow's WalkLength counts
        # nodes (start included): L nodes are L-1 steps.
        walks = g.simulate_walks(cfg["walks_per_node"], cfg["walk_nodes"] - 1)
        t1 = time.perf_counter()
        model = Word2Vec(
            walks,
            vector_size=cfg["dim"],
            window=cfg["window"],
            negative=cfg["negative"],
            epochs=cfg["epochs"],
            min_count=0,
            sg=1,
            workers=cfg["workers"],
            seed=cfg["seed"] + run,
            # capflow's schedule and no frequent-node subsampling (capflow
            # has none); gensim's default sample=1e-3 would skip part of the
            # work capflow does.
            alpha=cfg["alpha"],
            min_alpha=cfg["min_alpha"],
            sample=cfg["sample"],
        )
        t2 = time.perf_counter()
        timings.append((t2 - t0, t1 - t0, t2 - t1))
        tokens = sum(len(w) for w in walks)
        nwalks = len(walks)

    model.wv.save_word2vec_format(cfg["out"])
    print(json.dumps({
        "cold_s": timings[0][0],
        "warm_s": timings[-1][0],
        "walk_s": timings[-1][1],
        "w2v_s": timings[-1][2],
        "walks": nwalks,
        "tokens": tokens,
        "vectors": len(model.wv),
        "mode": cfg["mode"],
    }))


if __name__ == "__main__":
    main()
