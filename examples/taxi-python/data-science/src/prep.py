"""Prepare the raw taxi trips for training.

Reads the raw CSV (a file, or a folder of CSV files), keeps the label and
the feature columns, and splits the rows 70/15/15 with a fixed seed into
train, validation and test folders, one parquet file each. The same input
and seed always give the same split, so a re-run compares models on the
same test rows.
"""
import argparse
import glob
import os
import tempfile

import mlflow
import numpy as np
import pandas as pd

TARGET = "cost"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--raw_data", required=True, help="raw CSV file or folder of CSV files")
    p.add_argument("--train_data", required=True, help="output folder for the training split")
    p.add_argument("--val_data", required=True, help="output folder for the validation split")
    p.add_argument("--test_data", required=True, help="output folder for the test split")
    p.add_argument("--enable_monitoring", default="false", help="'true' to keep a copy for drift monitoring")
    p.add_argument("--table_name", default="taximonitoring", help="name of the monitoring copy")
    p.add_argument("--seed", type=int, default=42, help="seed of the split")
    return p.parse_args()


def read_raw(path):
    files = sorted(glob.glob(os.path.join(path, "*.csv"))) if os.path.isdir(path) else [path]
    if not files:
        raise SystemExit(f"no CSV files in {path}")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    # The sample's file starts with an unnamed index column, which pandas
    # calls "Unnamed: 0"; it is a row number, not a feature.
    df = df.loc[:, [c for c in df.columns if not str(c).startswith("Unnamed")]]
    if TARGET not in df.columns:
        raise SystemExit(f"{path}: no '{TARGET}' column; columns are {list(df.columns)}")
    return df.dropna()


def split(df, seed):
    """Shuffle with seed and cut at 70% and 85%."""
    order = np.random.default_rng(seed).permutation(len(df))
    n_train = int(len(df) * 0.70)
    n_val = int(len(df) * 0.15)
    parts = np.split(order, [n_train, n_train + n_val])
    return [df.iloc[idx].reset_index(drop=True) for idx in parts]


def main():
    args = parse_args()
    df = read_raw(args.raw_data)
    train, val, test = split(df, args.seed)
    for frame, folder, name in ((train, args.train_data, "train"), (val, args.val_data, "val"), (test, args.test_data, "test")):
        os.makedirs(folder, exist_ok=True)
        frame.to_parquet(os.path.join(folder, f"{name}.parquet"), index=False)
        print(f"{name}: {len(frame)} rows")
    with mlflow.start_run():
        mlflow.log_param("split_seed", args.seed)
        mlflow.log_metrics({"raw_rows": len(df), "train_rows": len(train), "val_rows": len(val), "test_rows": len(test)})
        if args.enable_monitoring.strip().lower() in ("true", "1", "yes"):
            # Production inputs are collected by the online deployment's
            # data_collector; the training rows are the baseline they are
            # compared with, kept with the run rather than in the train
            # folder, which the train step reads whole.
            with tempfile.TemporaryDirectory() as tmp:
                baseline = os.path.join(tmp, f"{args.table_name}.parquet")
                train.to_parquet(baseline, index=False)
                mlflow.log_artifact(baseline, artifact_path="monitoring")
            print(f"monitoring baseline logged as monitoring/{args.table_name}.parquet")


if __name__ == "__main__":
    main()
