"""Evidently's DataDriftPreset on two Parquet files, for bench/monitoring.sh.

Usage: monitoring_evidently.py REFERENCE CURRENT METHOD
METHOD is "default" (Evidently's choice per column), or a numerical method
(wasserstein, jensenshannon) used at threshold 0.1. Prints one JSON object:
{"seconds": {...}, "drifted": {column: bool}, "scores": {column: value}}.
Columns named n* are numerical, c* categorical."""
import json
import sys
import time

t0 = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

t_import = time.perf_counter()
ref = pd.read_parquet(sys.argv[1])
cur = pd.read_parquet(sys.argv[2])
t_read = time.perf_counter()
method = sys.argv[3]
definition = DataDefinition(
    numerical_columns=[c for c in ref.columns if c.startswith("n")],
    categorical_columns=[c for c in ref.columns if c.startswith("c")],
)
preset = DataDriftPreset() if method == "default" else DataDriftPreset(num_method=method, num_threshold=0.1)
report = Report([preset])
snapshot = report.run(
    Dataset.from_pandas(cur, data_definition=definition),
    Dataset.from_pandas(ref, data_definition=definition),
)
t_run = time.perf_counter()
drifted, scores = {}, {}
for m in snapshot.dict()["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift"):
        col = cfg["column"]
        value = float(m["value"])
        threshold = float(cfg["threshold"])
        scores[col] = value
        # Distances drift at or above the threshold, p-values below it.
        drifted[col] = bool(value < threshold if "p_value" in cfg.get("method", "") else value >= threshold)
print(json.dumps({"seconds": {"import": t_import - t0, "read": t_read - t_import, "drift": t_run - t_read},
                  "drifted": drifted, "scores": scores}))
