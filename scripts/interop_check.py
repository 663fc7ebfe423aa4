#!/usr/bin/env python3
"""Cross-checks the Go client against the official MLflow Python client.

Driven by integration/interop_test.go. Two modes, each taking one JSON
document as the second argument (or on stdin):

  interop_check.py check '<expected>'
      Reads back, with mlflow.MlflowClient, what the Go client wrote and
      compares it with <expected> (see EXPECTED below). Prints every mismatch
      and exits 1 if there is any; prints "interop check OK" otherwise.

  interop_check.py write '{"tracking_uri": ..., "experiment_name": ...}'
      Writes a run with the Python client (params, a tag, a metric history)
      and prints what it wrote as one JSON line, for the Go side to read back.

EXPECTED (every section optional):
  {"tracking_uri": "http://...",
   "run": {"run_id", "experiment_id", "run_name", "status",
           "params": {k: v}, "tags": {k: v},          # tags: a subset of the run's
           "metrics": {key: [[step, value, timestamp], ...]}},   # value may be "NaN"
   "artifacts": {"run_id",
                 "listings": {"": [{"path", "is_dir", "file_size"}], "dir": [...]},
                 "files": {"path/in/run": "content"}},
   "model": {"name", "description", "tags": {k: v},
             "aliases": {alias: version},
             "latest": {stage: version},              # get_latest_versions per stage
             "versions": {version: {"current_stage", "run_id", "source",
                                    "description", "tags", "aliases": [...]}}}}
"""

import json
import math
import os
import sys
import tempfile
import warnings

errors = []


def fail(what, got, want):
    errors.append(f"{what}: got {got!r}, want {want!r}")


def same_float(a, b):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_run(client, exp):
    run = client.get_run(exp["run_id"])
    info, data = run.info, run.data
    for field in ("experiment_id", "run_name", "status"):
        if field in exp and getattr(info, field) != exp[field]:
            fail(f"run {field}", getattr(info, field), exp[field])
    if "params" in exp and data.params != exp["params"]:
        fail("run params", data.params, exp["params"])
    for k, v in exp.get("tags", {}).items():
        if data.tags.get(k) != v:
            fail(f"run tag {k}", data.tags.get(k), v)

    for key, points in exp.get("metrics", {}).items():
        hist = sorted(client.get_metric_history(exp["run_id"], key), key=lambda m: (m.step, m.timestamp))
        want = sorted(points, key=lambda p: (p[0], p[2]))
        if len(hist) != len(want):
            fail(f"metric {key} history length", len(hist), len(want))
            continue
        for m, (step, value, ts) in zip(hist, want):
            if m.step != step or m.timestamp != ts or not same_float(m.value, value):
                fail(f"metric {key} point", (m.step, m.value, m.timestamp), (step, value, ts))
        # The run's latest value is the point with the highest step (then timestamp).
        latest = data.metrics.get(key)
        if latest is None or not same_float(latest, want[-1][1]):
            fail(f"run latest metric {key}", latest, want[-1][1])


def check_artifacts(client, exp):
    run_id = exp["run_id"]
    for path, entries in exp.get("listings", {}).items():
        got = sorted(
            (f.path, f.is_dir, None if f.is_dir else f.file_size)
            for f in client.list_artifacts(run_id, path or None)
        )
        want = sorted((e["path"], e["is_dir"], None if e["is_dir"] else e.get("file_size")) for e in entries)
        if got != want:
            fail(f"list_artifacts({path!r})", got, want)
    with tempfile.TemporaryDirectory() as dst:
        for path, content in exp.get("files", {}).items():
            try:
                local = client.download_artifacts(run_id, path, dst)
                with open(local, encoding="utf-8") as f:
                    got = f.read()
            except Exception as e:
                errors.append(f"download_artifacts({path!r}): {type(e).__name__}: {e}")
                continue
            if got != content:
                fail(f"artifact {path} content", got[:200], content[:200])
        # Downloading a directory must bring every file below it.
        for path, entries in exp.get("listings", {}).items():
            if not path:
                continue
            local = client.download_artifacts(run_id, path, os.path.join(dst, "dirs"))
            for e in entries:
                rel = os.path.relpath(e["path"], path)
                if not os.path.exists(os.path.join(local, rel)):
                    fail(f"download_artifacts({path!r}) content", sorted(os.listdir(local)), rel)


def check_model(client, exp):
    name = exp["name"]
    rm = client.get_registered_model(name)
    if rm.name != name:
        fail("registered model name", rm.name, name)
    if "description" in exp and (rm.description or "") != exp["description"]:
        fail("registered model description", rm.description, exp["description"])
    for k, v in exp.get("tags", {}).items():
        if rm.tags.get(k) != v:
            fail(f"registered model tag {k}", rm.tags.get(k), v)
    if "aliases" in exp and dict(rm.aliases) != exp["aliases"]:
        fail("registered model aliases", dict(rm.aliases), exp["aliases"])

    for alias, version in exp.get("aliases", {}).items():
        mv = client.get_model_version_by_alias(name, alias)
        if mv.version != version:
            fail(f"get_model_version_by_alias({alias!r})", mv.version, version)

    with warnings.catch_warnings():  # stages are deprecated in MLflow 3, still served
        warnings.simplefilter("ignore")
        for stage, version in exp.get("latest", {}).items():
            got = [mv.version for mv in client.get_latest_versions(name, stages=[stage])]
            if got != [version]:
                fail(f"get_latest_versions(stages=[{stage!r}])", got, [version])

    for version, want in exp.get("versions", {}).items():
        mv = client.get_model_version(name, version)
        for field in ("current_stage", "run_id", "source", "description"):
            if field in want and (getattr(mv, field) or "") != want[field]:
                fail(f"model version {version} {field}", getattr(mv, field), want[field])
        for k, v in want.get("tags", {}).items():
            if mv.tags.get(k) != v:
                fail(f"model version {version} tag {k}", mv.tags.get(k), v)
        if "aliases" in want and sorted(mv.aliases) != sorted(want["aliases"]):
            fail(f"model version {version} aliases", sorted(mv.aliases), sorted(want["aliases"]))


def check(cfg):
    from mlflow import MlflowClient

    uri = cfg["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for section, fn in (("run", check_run), ("artifacts", check_artifacts), ("model", check_model)):
        if section in cfg:
            try:
                fn(client, cfg[section])
            except Exception as e:  # a missing entity is a mismatch, not a crash
                errors.append(f"{section}: {type(e).__name__}: {e}")
    if errors:
        print(f"interop check FAILED ({len(errors)} mismatches):", file=sys.stderr)
        for e in errors:
            print("  - " + e, file=sys.stderr)
        return 1
    print("interop check OK")
    return 0


def write(cfg):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=cfg["tracking_uri"])
    exp = client.get_experiment_by_name(cfg["experiment_name"])
    exp_id = exp.experiment_id if exp else client.create_experiment(cfg["experiment_name"])
    run = client.create_run(exp_id, run_name="python-writer")
    run_id = run.info.run_id
    ts = 1_700_000_000_000
    params = {"optimizer": "adam", "batch_size": "32"}
    tags = {"writer": "mlflow-python"}
    metrics = {"loss": [[0, 0.5, ts], [1, 0.25, ts + 1], [2, 0.125, ts + 2]]}
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, t, s) for k, pts in metrics.items() for s, v, t in pts],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.set_terminated(run_id)
    out = {"run_id": run_id, "experiment_id": exp_id, "run_name": "python-writer", "status": "FINISHED",
           "params": params, "tags": tags, "metrics": metrics}
    # The client may print "View run ..." lines; the result is the last line.
    print(json.dumps(out))
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    cfg = json.loads(sys.argv[2] if len(sys.argv) > 2 else sys.stdin.read())
    return check(cfg) if sys.argv[1] == "check" else write(cfg)


if __name__ == "__main__":
    sys.exit(main())
