"""Evaluate the trained model on the test split and decide whether to deploy it.

Computes r2, mse, rmse and mae on the test rows, writes the predictions,
and scores every registered version of --model_name on the same rows. The
candidate is promoted (deploy_flag 1) when no version is registered yet or
when its r2 is at least the best registered version's: a tie promotes, a
worse model never does. The register step reads deploy_flag.
"""
import argparse
import glob
import json
import os

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

TARGET = "cost"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model_name", required=True, help="registered model to compare with")
    p.add_argument("--model_input", required=True, help="folder of the candidate MLflow model")
    p.add_argument("--test_data", required=True, help="folder of test parquet files")
    p.add_argument("--evaluation_output", required=True, help="output folder: predictions, scores, deploy_flag")
    return p.parse_args()


def read_folder(path):
    files = sorted(glob.glob(os.path.join(path, "*.parquet")))
    if not files:
        raise SystemExit(f"no parquet files in {path}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def scores(y, pred):
    mse = mean_squared_error(y, pred)
    return {"r2": r2_score(y, pred), "mse": mse, "rmse": float(np.sqrt(mse)), "mae": mean_absolute_error(y, pred)}


def registered_scores(name, X, y):
    """r2 of every registered version of name on (X, y), by version.

    A version whose input schema does not fit these columns (one trained
    on other features) cannot be compared and is left out, with a note.
    """
    out = {}
    for v in MlflowClient().search_model_versions(f"name='{name}'"):
        model = mlflow.pyfunc.load_model(f"models:/{name}/{v.version}")
        try:
            pred = model.predict(X)
        except MlflowException as e:
            print(f"v{v.version} cannot score these columns, not compared: {e.message}")
            continue
        out[str(v.version)] = r2_score(y, np.asarray(pred, dtype=float).ravel())
    return out


def plot(path, candidate, previous):
    """A bar per model; skipped when matplotlib is not in the environment."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display on a compute node
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; no comparison plot")
        return None
    labels = ["candidate"] + [f"v{v}" for v in sorted(previous, key=int)]
    values = [candidate] + [previous[v] for v in sorted(previous, key=int)]
    fig, ax = plt.subplots(figsize=(max(4, len(labels)), 3))
    ax.bar(labels, values, color=["tab:orange"] + ["tab:blue"] * len(previous))
    ax.set_ylabel("test r2")
    ax.set_title("candidate vs registered versions")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main():
    args = parse_args()
    test = read_folder(args.test_data)
    X = test.drop(columns=[TARGET])
    y = test[TARGET]
    model = mlflow.pyfunc.load_model(args.model_input)
    pred = np.asarray(model.predict(X), dtype=float).ravel()
    s = scores(y, pred)
    print(f"{args.model_name} candidate on {len(test)} test rows: " + ", ".join(f"{k} {v:.4f}" for k, v in s.items()))

    os.makedirs(args.evaluation_output, exist_ok=True)
    pd.DataFrame({"real_label": y, "predicted_label": pred}).to_csv(
        os.path.join(args.evaluation_output, "predictions.csv"), index=False)

    previous = registered_scores(args.model_name, X, y)
    best = max(previous.values()) if previous else None
    deploy = best is None or s["r2"] >= best
    if previous:
        print("registered versions, test r2: " + ", ".join(f"v{v} {r:.4f}" for v, r in sorted(previous.items(), key=lambda kv: int(kv[0]))))
    print(f"deploy_flag {int(deploy)}: " + ("no version registered yet" if best is None else
                                            f"candidate r2 {s['r2']:.6f} {'>=' if deploy else '<'} best registered {best:.6f}"))

    with open(os.path.join(args.evaluation_output, "deploy_flag"), "w") as f:
        f.write(str(int(deploy)))
    with open(os.path.join(args.evaluation_output, "score.json"), "w") as f:
        json.dump({"candidate": s, "registered_r2": previous, "deploy_flag": int(deploy)}, f, indent=2)
    png = plot(os.path.join(args.evaluation_output, "perf_comparison.png"), s["r2"], previous)

    with mlflow.start_run():
        mlflow.log_metrics({f"test_{k}": v for k, v in s.items()})
        mlflow.log_metric("deploy_flag", int(deploy))
        if png:
            mlflow.log_artifact(png)


if __name__ == "__main__":
    main()
