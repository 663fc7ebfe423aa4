#!/usr/bin/env python3
"""Python side of `make bench-mlflow` (driven by cmd/bench-mlflow).

Logs KEYS x STEPS metric points to one new run with the official client, the
way a Python user would: MlflowClient().log_batch in chunks of 1000 points.
Only the logging loop is timed (not interpreter start-up, imports or run
creation), so the Go side can time exactly the same work.

Usage: bench_mlflow_python.py '{"tracking_uri": ..., "experiment_id": ...,
                                "keys": 100, "steps": 1000, "chunk": 1000}'
Prints one JSON line on stdout:
  {"run_id": ..., "wall_s": ..., "cpu_s": ..., "points": ...}
Values are value(key k, step s) = k + s / 1000, which the Go side verifies.
"""

import json
import resource
import sys
import time


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    cfg = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=cfg["tracking_uri"])
    run = client.create_run(cfg["experiment_id"], run_name=cfg.get("run_name", "python-client"))
    run_id = run.info.run_id
    keys = [f"m{k:03d}" for k in range(cfg["keys"])]
    steps, chunk = cfg["steps"], cfg.get("chunk", 1000)

    # Warm the connection pool and lazy imports outside the timed loop, as the
    # Go side does by creating its run first.
    client.get_run(run_id)

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    batch = []
    for step in range(steps):
        ts = int(time.time() * 1000)
        for k, key in enumerate(keys):
            batch.append(Metric(key, k + step / 1000, ts, step))
            if len(batch) == chunk:
                client.log_batch(run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0

    client.set_terminated(run_id)
    print(json.dumps({"run_id": run_id, "wall_s": wall, "cpu_s": cpu, "points": steps * len(keys)}))


if __name__ == "__main__":
    main()
