"""Model performance, NDCG and data quality with scikit-learn and numpy:
the reference the drift package is checked against. Usage:
oracle_sklearn.py SPEC.json; prints one JSON object {"name": value}."""
import csv
import json
import math
import sys

import numpy as np
from sklearn import metrics


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return {h: [r[i] for r in rows[1:]] for i, h in enumerate(rows[0])}


def num(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return None if math.isnan(v) else v


spec = json.load(open(sys.argv[1]))
out = {}
if "classification" in spec:
    t = load(spec["classification"])
    pairs = [(a, b) for a, b in zip(t["label"], t["pred"]) if a != "" and b != ""]
    y, p = [a for a, _ in pairs], [b for _, b in pairs]
    labels = sorted(set(y) | set(p))
    if len(labels) <= 2:
        pos = next((l for l in labels if l.lower() in ("1", "true", "yes")), labels[-1])
        kw = {"average": "binary", "pos_label": pos}
    else:
        kw = {"average": "macro"}
    out["accuracy"] = metrics.accuracy_score(y, p)
    out["precision"] = metrics.precision_score(y, p, zero_division=0, **kw)
    out["recall"] = metrics.recall_score(y, p, zero_division=0, **kw)
    out["f1_score"] = metrics.f1_score(y, p, zero_division=0, **kw)
if "regression" in spec:
    t = load(spec["regression"])
    pairs = [(num(a), num(b)) for a, b in zip(t["y"], t["yhat"])]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    y, p = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    out["mae"] = metrics.mean_absolute_error(y, p)
    out["mse"] = metrics.mean_squared_error(y, p)
    out["rmse"] = math.sqrt(metrics.mean_squared_error(y, p))
if "ndcg" in spec:
    truth, score = spec["ndcg"]
    out["ndcg"] = metrics.ndcg_score(np.array([truth]), np.array([score]))
if "quality" in spec:
    ref, prod = load(spec["quality"][0]), load(spec["quality"][1])
    for f, kind in spec["quality"][2].items():
        r, p = ref[f], prod[f]
        n = len(p)
        nulls = sum(1 for s in p if s == "")
        if kind == "numerical":
            rv = [num(s) for s in r if num(s) is not None]
            lo, hi = min(rv), max(rv)
            bad = sum(1 for s in p if s != "" and num(s) is None)
            oob = sum(1 for s in p if num(s) is not None and (num(s) < lo or num(s) > hi))
        else:
            seen = set(s for s in r if s != "")
            bad = 0
            oob = sum(1 for s in p if s != "" and s not in seen)
        out[f + "/null_value_rate"] = nulls / n
        out[f + "/data_type_error_rate"] = bad / n
        out[f + "/out_of_bounds_rate"] = oob / n
print(json.dumps(out))
