#!/usr/bin/env python3
"""cpprb side of `make bench-per` (driven by cmd/bench-per).

Fills a cpprb PrioritizedReplayBuffer to capacity with CartPole-sized
transitions (obs/next_obs 4 x float32, act int32, rew float32, done float32),
then times a loop of sample(batch, beta) + update_priorities(indexes, |delta|)
pairs with beta annealed by beta_step per sample call up to 1, the way
capflow's replay.Buffer anneals it. The |delta| come from a pool of
pre-drawn uniform [0, 1) batches, cycled, so only buffer work is timed.

cpprb stores (p + eps)^alpha for the p it is given: passing |delta| with
eps = capflow's epsilon gives capflow's priority (|delta| + eps)^alpha.

Timed: a warm-up loop of warmup_s seconds (not counted), then the loop in
chunks of 256 pairs until at least `seconds` have passed. Not timed:
interpreter start-up, imports, the fill.

Usage: bench_per_cpprb.py '{"capacity": 100000, "batch": 32, "alpha": 0.6,
        "eps": 0.01, "beta": 0.4, "beta_step": 0.001, "seconds": 2,
        "warmup_s": 0.3, "seed": 1, "pool": 1024}'
Prints one JSON line on stdout: {"ops": ..., "seconds": ..., "ops_per_s": ..., "cpprb": version}
"""

import json
import sys
import time
from importlib.metadata import version


def main():
    cfg = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    import numpy as np
    from cpprb import PrioritizedReplayBuffer

    cap, batch = cfg["capacity"], cfg["batch"]
    rng = np.random.default_rng(cfg["seed"])
    rb = PrioritizedReplayBuffer(
        cap,
        {
            "obs": {"shape": 4, "dtype": np.float32},
            "act": {"shape": 1, "dtype": np.int32},
            "rew": {"shape": 1, "dtype": np.float32},
            "next_obs": {"shape": 4, "dtype": np.float32},
            "done": {"shape": 1, "dtype": np.float32},
        },
        alpha=cfg["alpha"],
        eps=cfg["eps"],
    )
    rb.add(
        obs=rng.random((cap, 4), dtype=np.float32),
        act=rng.integers(0, 2, (cap, 1), dtype=np.int32),
        rew=rng.random((cap, 1), dtype=np.float32),
        next_obs=rng.random((cap, 4), dtype=np.float32),
        done=np.zeros((cap, 1), dtype=np.float32),
    )
    assert rb.get_stored_size() == cap

    pool = cfg["pool"]
    deltas = rng.random((pool, batch))
    beta, step = cfg["beta"], cfg["beta_step"]
    ops = 0

    def loop(n):
        nonlocal beta, ops
        for _ in range(n):
            s = rb.sample(batch, beta)
            rb.update_priorities(s["indexes"], deltas[ops % pool])
            beta = min(1.0, beta + step)
            ops += 1

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < cfg["warmup_s"]:
        loop(256)

    ops = 0
    t0 = time.perf_counter()
    while True:
        loop(256)
        elapsed = time.perf_counter() - t0
        if elapsed >= cfg["seconds"]:
            break
    print(json.dumps({"ops": ops, "seconds": elapsed, "ops_per_s": ops / elapsed, "cpprb": version("cpprb")}))


if __name__ == "__main__":
    main()
