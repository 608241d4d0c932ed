"""The canonical MLflow workflow, run by the unchanged `mlflow` client.

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_TOKEN=... \
        python canonical.py --experiment NAME --model NAME

Logs three runs (params, a stepped metric, tags, a dict and a text artifact, a
pandas dataset input, an sklearn model with an input example), registers each
model (versions 1, 2, 3), sets and resolves an alias, loads versions back
through pyfunc, searches runs, reads metric history and downloads artifacts.
Works with mlflow 2.x and 3.x. Exits 1 with a message on stderr on the first
failed check; on success the last line on stdout is one JSON summary.
"""

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import pandas as pd

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LinearRegression

MLFLOW_MAJOR = int(mlflow.__version__.split(".")[0])
try:  # dataset tracking: mlflow >= 2.4
    import mlflow.data
    import mlflow.data.pandas_dataset  # noqa: F401  (from_pandas)

    HAVE_DATASETS = hasattr(mlflow, "log_input")
except ImportError:
    HAVE_DATASETS = False

# One run per alpha, in this order. alpha scales the noise added to the
# generated target, so each run ends with a different rmse; the order is
# chosen so that "rmse ascending" differs from both creation orders.
ALPHAS = [0.5, 0.1, 1.0]
STEPS = 10
FEATURES = ["x1", "x2", "x3"]
WEIGHTS = np.array([1.5, -2.0, 0.5])
INTERCEPT = 3.0


def fail(msg):
    print(f"canonical.py: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def error_code(exc):
    return getattr(exc, "error_code", None)


def train_loss(alpha, step):
    """A made-up, deterministic loss curve logged over STEPS steps."""
    return round(1.0 / (step + 1) + alpha, 6)


def make_data(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, len(FEATURES)))
    noise = rng.normal(size=200)
    X_test = rng.normal(size=(25, len(FEATURES)))
    return pd.DataFrame(X, columns=FEATURES), noise, pd.DataFrame(X_test, columns=FEATURES)


def log_sklearn_model(model, example):
    # 3.x names the model with name=; 2.x only knows artifact_path=.
    if MLFLOW_MAJOR >= 3:
        return mlflow.sklearn.log_model(model, name="model", input_example=example)
    return mlflow.sklearn.log_model(model, artifact_path="model", input_example=example)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    check(os.environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI is not set")
    print(f"mlflow {mlflow.__version__} -> {mlflow.get_tracking_uri()}", file=sys.stderr, flush=True)

    client = MlflowClient()
    exp = mlflow.set_experiment(args.experiment)
    exp_id = exp.experiment_id
    check(exp.name == args.experiment, f"set_experiment returned experiment {exp.name!r}")
    got = client.get_experiment_by_name(args.experiment)
    check(got is not None and got.experiment_id == exp_id,
          f"get_experiment_by_name({args.experiment!r}) = {got!r}, want id {exp_id}")
    found = client.search_experiments(filter_string=f"name = '{args.experiment}'")
    check([e.experiment_id for e in found] == [exp_id],
          f"search_experiments by name found {[e.experiment_id for e in found]}, want [{exp_id}]")

    X, noise, X_test = make_data(args.seed)
    run_ids, rmses, models, model_uris, artifact_uris = [], [], [], [], []
    for i, alpha in enumerate(ALPHAS):
        y = X.to_numpy() @ WEIGHTS + INTERCEPT + alpha * noise
        model = LinearRegression().fit(X, y)
        rmse = float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))
        train_df = X.assign(y=y)
        with mlflow.start_run(run_name=f"alpha-{alpha}") as run:
            run_id = run.info.run_id
            mlflow.log_param("alpha", alpha)
            mlflow.log_param("n_samples", len(X))
            mlflow.log_param("model_class", "LinearRegression")
            for step in range(STEPS):
                mlflow.log_metric("train_loss", train_loss(alpha, step), step=step)
            mlflow.log_metric("rmse", rmse)
            mlflow.set_tag("wharf.test", "canonical")
            mlflow.set_tag("alpha", str(alpha))
            mlflow.log_dict({"alpha": alpha, "features": FEATURES, "seed": args.seed}, "config/train.json")
            mlflow.log_text(f"LinearRegression, alpha={alpha}\n", "notes/readme.txt")
            if HAVE_DATASETS:
                ds = mlflow.data.from_pandas(train_df, name="synthetic-train", targets="y")
                mlflow.log_input(ds, context="training")
            info = log_sklearn_model(model, X.head(3))
            artifact_uris.append(run.info.artifact_uri)
        check(info.signature is not None, f"run {i + 1}: no signature inferred from the input example")
        mv = mlflow.register_model(info.model_uri, args.model)
        check(str(mv.version) == str(i + 1), f"register_model #{i + 1} gave version {mv.version!r}")
        check(mv.status == "READY", f"version {mv.version} has status {mv.status!r}, want READY")
        run_ids.append(run_id)
        rmses.append(rmse)
        models.append(model)
        model_uris.append(info.model_uri)
    print(f"logged runs {run_ids}", file=sys.stderr, flush=True)

    # Each run as stored.
    datasets = 0
    for i, (run_id, alpha) in enumerate(zip(run_ids, ALPHAS)):
        run = client.get_run(run_id)
        check(run.info.status == "FINISHED", f"run {run_id} status {run.info.status!r}")
        check(run.info.experiment_id == exp_id, f"run {run_id} in experiment {run.info.experiment_id}")
        p, m, tg = run.data.params, run.data.metrics, run.data.tags
        check(p.get("alpha") == str(alpha), f"run {run_id} param alpha = {p.get('alpha')!r}")
        check(p.get("n_samples") == "200", f"run {run_id} param n_samples = {p.get('n_samples')!r}")
        check(math.isclose(m.get("rmse", -1), rmses[i], rel_tol=1e-9),
              f"run {run_id} metric rmse = {m.get('rmse')!r}, want {rmses[i]}")
        check(math.isclose(m.get("train_loss", -1), train_loss(alpha, STEPS - 1), rel_tol=1e-9),
              f"run {run_id} latest train_loss = {m.get('train_loss')!r}, want the last step's")
        check(tg.get("wharf.test") == "canonical", f"run {run_id} tag wharf.test = {tg.get('wharf.test')!r}")
        check(tg.get("mlflow.runName") == f"alpha-{alpha}", f"run {run_id} tag mlflow.runName = {tg.get('mlflow.runName')!r}")
        if HAVE_DATASETS:
            names = [d.dataset.name for d in run.inputs.dataset_inputs]
            check(names == ["synthetic-train"], f"run {run_id} dataset inputs {names}")
            datasets += len(names)

    # Registry: one model, three versions, each pointing at its run.
    versions = client.search_model_versions(f"name='{args.model}'")
    got = sorted((int(v.version), v.run_id) for v in versions)
    want = [(i + 1, r) for i, r in enumerate(run_ids)]
    check(got == want, f"search_model_versions(name='{args.model}') = {got}, want {want}")
    rm = client.get_registered_model(args.model)
    check(rm.name == args.model, f"get_registered_model gave {rm.name!r}")

    client.set_registered_model_alias(args.model, "champion", "2")
    champ = client.get_model_version_by_alias(args.model, "champion")
    check(str(champ.version) == "2", f"alias champion -> version {champ.version!r}, want 2")
    check(champ.run_id == run_ids[1], f"alias champion -> run {champ.run_id}, want {run_ids[1]}")
    aliases = client.get_registered_model(args.model).aliases
    check(dict(aliases).get("champion") == "2", f"registered model aliases {aliases!r}")

    # Load back through pyfunc and compare with the in-memory sklearn models.
    for uri, want_model in [(f"models:/{args.model}/3", models[2]), (f"models:/{args.model}@champion", models[1])]:
        loaded = mlflow.pyfunc.load_model(uri)
        pred = np.asarray(loaded.predict(X_test)).ravel()
        ref = want_model.predict(X_test)
        check(pred.shape == ref.shape and np.allclose(pred, ref),
              f"{uri}: predictions differ from the sklearn model: {pred[:3]} vs {ref[:3]}")

    # Search.
    df = mlflow.search_runs(experiment_ids=[exp_id],
                            filter_string="metrics.rmse < 10 and params.alpha = '0.5'",
                            order_by=["metrics.rmse ASC"])
    filtered = df["run_id"].tolist()
    check(filtered == [run_ids[0]], f"search_runs alpha=0.5 gave {filtered}, want [{run_ids[0]}]")
    order = [r for _, r in sorted(zip(rmses, run_ids))]
    df = mlflow.search_runs(experiment_ids=[exp_id], filter_string="metrics.rmse < 10",
                            order_by=["metrics.rmse ASC"])
    asc = df["run_id"].tolist()
    check(asc == order, f"search_runs order_by rmse ASC gave {asc}, want {order}")
    df = mlflow.search_runs(experiment_ids=[exp_id], filter_string="params.alpha != '0.5'",
                            order_by=["metrics.rmse DESC"])
    desc = df["run_id"].tolist()
    want_desc = [r for r in reversed(order) if r != run_ids[0]]
    check(desc == want_desc, f"search_runs alpha != 0.5 order_by rmse DESC gave {desc}, want {want_desc}")
    df = mlflow.search_runs(experiment_ids=[exp_id], filter_string="metrics.rmse > 1000")
    check(len(df) == 0, f"search_runs rmse > 1000 gave {len(df)} runs")

    # A run that does not exist.
    try:
        client.get_run("0" * 32)
        fail("get_run of an unknown run id succeeded")
    except MlflowException as e:
        check(error_code(e) == "RESOURCE_DOES_NOT_EXIST",
              f"get_run of an unknown run id: error_code {error_code(e)!r}, want RESOURCE_DOES_NOT_EXIST ({e})")
    not_found = "RESOURCE_DOES_NOT_EXIST"

    # Metric history: every step, with its value. (mlflow 3.x re-logs step 0
    # with the logged model's id, so a step may appear twice, same value.)
    hist = client.get_metric_history(run_ids[0], "train_loss")
    steps = sorted({h.step for h in hist})
    check(steps == list(range(STEPS)), f"train_loss history steps {steps}, want 0..{STEPS - 1}")
    for h in hist:
        check(math.isclose(h.value, train_loss(ALPHAS[0], h.step), rel_tol=1e-9),
              f"train_loss step {h.step} = {h.value}, want {train_loss(ALPHAS[0], h.step)}")

    # Artifacts.
    top = {a.path for a in client.list_artifacts(run_ids[0])}
    check({"config", "notes"} <= top, f"list_artifacts of run {run_ids[0]}: {sorted(top)}")
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_ids[0], artifact_path="notes/readme.txt", dst_path=tmp)
        with open(path) as f:
            text = f.read()
        check(text == f"LinearRegression, alpha={ALPHAS[0]}\n", f"downloaded notes/readme.txt = {text!r}")
        path = mlflow.artifacts.download_artifacts(run_id=run_ids[0], artifact_path="config", dst_path=tmp)
        with open(os.path.join(path, "train.json")) as f:
            cfg = json.load(f)
        check(cfg == {"alpha": ALPHAS[0], "features": FEATURES, "seed": args.seed}, f"downloaded config/train.json = {cfg!r}")

    print(json.dumps({
        "client": mlflow.__version__,
        "experiment": args.experiment,
        "experiment_id": exp_id,
        "model": args.model,
        "versions": len(versions),
        "run_ids": run_ids,
        "alphas": ALPHAS,
        "artifact_uris": artifact_uris,
        "model_uris": model_uris,
        "champion": str(champ.version),
        "search_filtered": filtered,
        "search_order": asc,
        "metric_steps": len(steps),
        "dataset_inputs": datasets,
        "not_found_error": not_found,
    }), flush=True)


if __name__ == "__main__":
    main()
