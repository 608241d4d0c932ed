"""Azure ML's monitoring metrics computed with numpy and scipy, the way
Azure's Spark components compute them: the reference the drift package is
checked against. Usage: oracle.py REF.csv PROD.csv SPEC.json; prints one
JSON object {"feature/metric": value}."""
import csv
import json
import math
import sys

import numpy as np
from scipy import stats
from scipy.spatial import distance


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    return {h: [r[i] if i < len(r) else "" for r in rows[1:]] for i, h in enumerate(head)}


def num(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return None if math.isnan(v) else v


def keep_rows(table, kinds):
    n = len(next(iter(table.values())))
    keep = []
    for r in range(n):
        ok = True
        for f, kind in kinds.items():
            s = table[f][r]
            if s == "" or (kind == "numerical" and num(s) is None):
                ok = False
                break
        keep.append(ok)
    return keep


def main():
    ref, prod = load(sys.argv[1]), load(sys.argv[2])
    spec = json.load(open(sys.argv[3]))
    kinds = spec["features"]
    kr, kp = keep_rows(ref, kinds), keep_rows(prod, kinds)
    out = {}
    for f, kind in kinds.items():
        a = [s for s, k in zip(ref[f], kr) if k]
        b = [s for s, k in zip(prod[f], kp) if k]
        if kind == "numerical":
            a = np.array([num(s) for s in a])
            b = np.array([num(s) for s in b])
            n = min(len(a), len(b))
            k = math.ceil(math.log2(n) + 1)
            lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
            edges = np.linspace(lo, hi, k + 1) if lo != hi else np.array([lo, lo * 1.01])
            ca = np.histogram(a, edges)[0].astype(float)
            cb = np.histogram(b, edges)[0].astype(float)
            std = np.std(a, ddof=1)
            out[f + "/normalized_wasserstein_distance"] = stats.wasserstein_distance(a, b) / max(std, 0.001)
            if len(a) < 10000 and len(b) < 10000:
                out[f + "/two_sample_kolmogorov_smirnov_test"] = stats.ks_2samp(a, b).pvalue
        else:
            cats = sorted(set(a) | set(b))
            ca = np.array([a.count(c) for c in cats], dtype=float)
            cb = np.array([b.count(c) for c in cats], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f + "/pearsons_chi_squared_test"] = stats.chisquare(cb, ca / len(a) * len(b)).pvalue
        out[f + "/jensen_shannon_distance"] = distance.jensenshannon(ca, cb, base=2)
        pa, pb = (ca + 1) / len(a), (cb + 1) / len(b)
        out[f + "/population_stability_index"] = np.sum((pb - pa) * np.log(pb / pa))
    print(json.dumps({k: (None if math.isnan(v) else float(v)) for k, v in out.items()}))


main()
