"""Train a linear regression of the taxi fare on the trip's features.

Every column of the training data but the label is a feature, in the
order of the data file, so a request that lists a trip's values in that
order (the sample's taxi-request.json) needs no column names. The model is
logged to the step's MLflow run and saved as an MLflow model into the
step's output folder, which the evaluate and register steps read.
"""
import argparse
import glob
import os
from importlib import metadata

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

TARGET = "cost"

# The packages that loading the model needs, pinned to the versions it was
# trained with. Naming them (rather than letting mlflow infer them, which
# starts a second Python process per logged copy) keeps the step quick, and
# the serving environment built from them is the training environment.
MODEL_PACKAGES = ("mlflow", "numpy", "pandas", "scikit-learn")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train_data", required=True, help="folder of training parquet files")
    p.add_argument("--model_output", required=True, help="output folder for the MLflow model")
    p.add_argument("--fit_intercept", default="true", help="LinearRegression fit_intercept ('true' or 'false')")
    p.add_argument("--positive", default="false", help="LinearRegression positive: 'true' forces non-negative coefficients")
    return p.parse_args()


def read_folder(path):
    files = sorted(glob.glob(os.path.join(path, "*.parquet")))
    if not files:
        raise SystemExit(f"no parquet files in {path}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def as_bool(text):
    return str(text).strip().lower() in ("true", "1", "yes")


def main():
    args = parse_args()
    df = read_folder(args.train_data)
    X = df.drop(columns=[TARGET])
    y = df[TARGET]
    model = LinearRegression(fit_intercept=as_bool(args.fit_intercept), positive=as_bool(args.positive)).fit(X, y)
    pred = model.predict(X)
    mse = mean_squared_error(y, pred)
    metrics = {
        "train_r2": r2_score(y, pred),
        "train_mse": mse,
        "train_rmse": float(np.sqrt(mse)),
        "train_mae": mean_absolute_error(y, pred),
    }
    print(f"trained on {len(df)} rows, {X.shape[1]} features: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

    signature = infer_signature(X, pred)
    requirements = [f"{p}=={metadata.version(p)}" for p in MODEL_PACKAGES]
    with mlflow.start_run():
        mlflow.log_params({"model": "LinearRegression", "fit_intercept": model.fit_intercept,
                           "positive": model.positive,
                           "features": X.shape[1], "train_rows": len(df)})
        mlflow.log_metrics(metrics)
        mlflow.sklearn.log_model(model, artifact_path="model", signature=signature, pip_requirements=requirements)
        # The output folder exists and is empty; save_model fills it.
        mlflow.sklearn.save_model(model, path=args.model_output, signature=signature, pip_requirements=requirements)


if __name__ == "__main__":
    main()
