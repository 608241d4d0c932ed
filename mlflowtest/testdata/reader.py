"""Read-only access through the unchanged `mlflow` client.

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_TOKEN=<a Reader's token> \
        python reader.py --experiment-id ID --run-id RUN --model NAME

The runs, experiments and model versions that canonical.py wrote can be read;
every write (log a metric, set a tag, create an experiment, set an alias) is
refused with PERMISSION_DENIED, and the run is left unchanged. Exits 1 with a
message on stderr on the first failed check; on success the last line on
stdout is one JSON summary.
"""

import argparse
import json
import os
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def fail(msg):
    print(f"reader.py: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_error(what, code, fn):
    try:
        fn()
    except MlflowException as e:
        got = getattr(e, "error_code", None)
        check(got == code, f"{what}: error_code {got!r}, want {code} ({e})")
        return
    fail(f"{what} succeeded, want {code}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment-id", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--model", required=True)
    args = ap.parse_args()
    check(os.environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI is not set")
    client = MlflowClient()

    # Reads work.
    ids = [e.experiment_id for e in client.search_experiments()]
    check(args.experiment_id in ids, f"search_experiments: {ids} lacks experiment {args.experiment_id}")
    exp = client.get_experiment(args.experiment_id)
    run = client.get_run(args.run_id)
    check(run.info.experiment_id == args.experiment_id, f"get_run: experiment {run.info.experiment_id}")
    before = dict(run.data.metrics)
    runs = mlflow.search_runs(experiment_ids=[args.experiment_id], output_format="list")
    run_ids = [r.info.run_id for r in runs]
    check(args.run_id in run_ids, f"search_runs: {run_ids} lacks run {args.run_id}")
    hist = client.get_metric_history(args.run_id, "train_loss")
    check(len(hist) > 0, "get_metric_history: no train_loss history")
    versions = client.search_model_versions(f"name='{args.model}'")
    check(len(versions) == 3, f"search_model_versions: {len(versions)} versions, want 3")

    # Writes are refused.
    denied = []
    for what, fn in [
        ("log_metric", lambda: client.log_metric(args.run_id, "reader_probe", 1.0)),
        ("set_tag", lambda: client.set_tag(args.run_id, "reader_probe", "x")),
        ("create_experiment", lambda: client.create_experiment(f"{exp.name}-by-reader")),
        ("set_registered_model_alias", lambda: client.set_registered_model_alias(args.model, "reader", "1")),
    ]:
        expect_error(what, "PERMISSION_DENIED", fn)
        denied.append(what)

    after = client.get_run(args.run_id)
    check(dict(after.data.metrics) == before, f"run metrics changed: {before} -> {dict(after.data.metrics)}")
    check("reader_probe" not in after.data.tags, "the refused tag is on the run")
    check(client.get_experiment_by_name(f"{exp.name}-by-reader") is None, "the refused experiment exists")

    print(json.dumps({
        "client": mlflow.__version__,
        "experiments_seen": len(ids),
        "runs_seen": len(run_ids),
        "versions_seen": len(versions),
        "denied": denied,
    }), flush=True)


if __name__ == "__main__":
    main()
