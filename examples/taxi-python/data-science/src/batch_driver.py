"""Batch scoring script for the taxi model (Azure ML batch deployment contract).

init() runs once per worker and loads the MLflow model from
AZUREML_MODEL_DIR; run(mini_batch) gets a list of CSV file paths and
returns one row per trip: the file it came from and the predicted fare.
"""
import os

import mlflow.pyfunc
import pandas as pd

TARGET = "cost"

model = None


def _model_folder(root):
    """The folder holding MLmodel: the model dir itself, or its only
    sub-folder (Azure puts a registered folder one level down)."""
    if os.path.exists(os.path.join(root, "MLmodel")):
        return root
    subs = [d for d in sorted(os.listdir(root)) if os.path.exists(os.path.join(root, d, "MLmodel"))]
    if len(subs) != 1:
        raise RuntimeError(f"no single MLflow model under {root}: {os.listdir(root)}")
    return os.path.join(root, subs[0])


def init():
    global model
    path = _model_folder(os.environ["AZUREML_MODEL_DIR"])
    model = mlflow.pyfunc.load_model(path)
    print(f"batch_driver: loaded {path}")


def run(mini_batch):
    frames = []
    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        # Index and label columns are not features; the model's signature
        # picks the features by name, whatever their order in the file.
        data = data.loc[:, [c for c in data.columns if not str(c).startswith("Unnamed") and c != TARGET]]
        pred = model.predict(data)
        frames.append(pd.DataFrame({"file_name": os.path.basename(file_path), "prediction": list(pred)}))
        print(f"batch_driver: {len(data)} rows of {os.path.basename(file_path)}")
    if not frames:
        return pd.DataFrame(columns=["file_name", "prediction"])
    return pd.concat(frames, ignore_index=True)
