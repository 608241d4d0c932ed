"""Workspace isolation as the unchanged `mlflow` client sees it.

    MLFLOW_TRACKING_URI=<workspace B's URI> MLFLOW_TRACKING_TOKEN=... \
        python isolation.py --experiment NAME --experiment-id ID --run-id RUN \
            --model NAME [--artifact-uri URI]

Everything named here was written to workspace A by canonical.py. Seen from
workspace B none of it exists: the run is RESOURCE_DOES_NOT_EXIST, the
experiment name and the registered model are absent, A's artifacts cannot be
downloaded through B; and B can create an experiment of the same name without
touching A's. Exits 1 with a message on stderr on the first failed check; on
success the last line on stdout is one JSON summary.
"""

import argparse
import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


def fail(msg):
    print(f"isolation.py: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_not_found(what, fn):
    try:
        got = fn()
    except MlflowException as e:
        code = getattr(e, "error_code", None)
        check(code == NOT_FOUND, f"{what}: error_code {code!r}, want {NOT_FOUND} ({e})")
        return
    fail(f"{what} succeeded from workspace B: {got!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--experiment-id", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--artifact-uri", default="")
    args = ap.parse_args()
    check(os.environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI is not set")
    client = MlflowClient()
    checks = []

    expect_not_found("get_run of workspace A's run", lambda: client.get_run(args.run_id))
    checks.append("get_run")

    check(client.get_experiment_by_name(args.experiment) is None,
          f"get_experiment_by_name({args.experiment!r}) found workspace A's experiment")
    exps = client.search_experiments(view_type=ViewType.ALL)
    names = [e.name for e in exps]
    check(args.experiment not in names, f"search_experiments lists workspace A's experiment: {names}")
    checks.append("experiment_names")

    # Whatever B holds, none of its runs is A's run.
    ids = [e.experiment_id for e in exps]
    if ids:
        runs = mlflow.search_runs(experiment_ids=ids, run_view_type=ViewType.ALL, output_format="list")
        check(args.run_id not in [r.info.run_id for r in runs], "search_runs in workspace B returns A's run")
    # Searching by A's experiment id finds nothing (or the id is unknown).
    try:
        runs = mlflow.search_runs(experiment_ids=[args.experiment_id], output_format="list")
        check(args.run_id not in [r.info.run_id for r in runs],
              f"search_runs(experiment_ids=[{args.experiment_id}]) in workspace B returns A's run")
    except MlflowException as e:
        check(getattr(e, "error_code", None) in (NOT_FOUND, "INVALID_PARAMETER_VALUE"),
              f"search_runs with A's experiment id: unexpected error {e}")
    checks.append("search_runs")

    try:
        hist = client.get_metric_history(args.run_id, "train_loss")
        check(hist == [], f"get_metric_history of A's run from B returned {len(hist)} points")
    except MlflowException as e:
        check(getattr(e, "error_code", None) == NOT_FOUND, f"get_metric_history of A's run: unexpected error {e}")
    checks.append("metric_history")

    expect_not_found("get_registered_model of workspace A's model", lambda: client.get_registered_model(args.model))
    versions = client.search_model_versions(f"name='{args.model}'")
    check(versions == [], f"search_model_versions in B found {len(versions)} versions of A's model")
    checks.append("registry")

    with tempfile.TemporaryDirectory() as tmp:
        try:
            mlflow.pyfunc.load_model(f"models:/{args.model}/1", dst_path=tmp)
            fail(f"models:/{args.model}/1 loaded from workspace B")
        except MlflowException:
            pass
    checks.append("load_model")

    # A's artifacts through B's artifact proxy. Only for a host-less
    # mlflow-artifacts: URI, which the client resolves against B's tracking URI.
    uri = args.artifact_uri
    if uri.startswith("mlflow-artifacts:/") and not uri.startswith("mlflow-artifacts://"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(artifact_uri=uri.rstrip("/") + "/notes/readme.txt", dst_path=tmp)
            except Exception:  # the HTTP artifact repository raises requests' HTTPError
                path = None
            if path is not None and os.path.exists(path):
                fail(f"downloaded workspace A's artifact {uri}/notes/readme.txt through workspace B")
        checks.append("artifacts")

    # The same experiment name is free in B, and creating it leaves A alone.
    exp_b = mlflow.set_experiment(args.experiment)
    with mlflow.start_run() as run:
        mlflow.log_metric("isolation_probe", 1.0)
    runs = mlflow.search_runs(experiment_ids=[exp_b.experiment_id], output_format="list")
    check([r.info.run_id for r in runs] == [run.info.run_id],
          f"B's new experiment {args.experiment!r} holds runs {[r.info.run_id for r in runs]}")
    check(run.info.run_id != args.run_id, "B handed out A's run id")
    expect_not_found("get_run of workspace A's run after B's writes", lambda: client.get_run(args.run_id))
    checks.append("same_name_in_b")

    print(json.dumps({
        "client": mlflow.__version__,
        "checks": checks,
        "b_experiment_id": exp_b.experiment_id,
        "b_run_id": run.info.run_id,
    }), flush=True)


if __name__ == "__main__":
    main()
