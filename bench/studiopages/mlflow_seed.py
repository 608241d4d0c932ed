"""Seed an MLflow SQLite tracking store with the studio benchmark's data.

MLflow's own store creates the schema, the experiment and one run of each
kind; the rest are copies of those rows written with executemany, which
is what makes 100,000 runs and a 1,000,000-point history take seconds
instead of hours through the REST API. The values match studiopages's
seeder: run i has rmse unit(i), r2 1 - unit(i+7), alpha and solver by i.

usage: mlflow_seed.py DB_PATH ARTIFACT_DIR RUNS POINTS  (prints JSON)
"""
import json
import math
import sqlite3
import sys
import time
import uuid

from mlflow.entities import Metric, Param, RunStatus
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

M = (1 << 64) - 1


def mix64(x):
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)


def unit(x):
    return (mix64((x + 1) & M) >> 11) / float(1 << 53)


def loss_at(step):
    v = 2 * math.exp(-step / 200000) + 0.05 * unit(step)
    return 9.0 if step == 777777 else v


def main():
    db, art, runs, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    started = time.time()
    store = SqlAlchemyStore("sqlite:///" + db, art)
    exp_id = store.create_experiment("studio-bench")
    t0 = int(time.time() * 1000) - runs * 1000
    template = store.create_run(exp_id, "bench", t0, [], "template")
    store.log_batch(template.info.run_id, [Metric("rmse", 0.5, t0, 0)], [Param("alpha", "0.1")], [])
    store.update_run_info(template.info.run_id, RunStatus.FINISHED, t0 + 900, "template")
    long_run = store.create_run(exp_id, "bench", int(time.time() * 1000), [], "long-history")
    del store

    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    row = dict(zip(cols, con.execute("SELECT * FROM runs WHERE run_uuid = ?", (template.info.run_id,)).fetchone()))
    tag_rows = con.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (template.info.run_id,)).fetchall()
    con.execute("DELETE FROM tags WHERE run_uuid = ?", (template.info.run_id,))
    for t in ("metrics", "latest_metrics", "params"):
        con.execute("DELETE FROM %s WHERE run_uuid = ?" % t, (template.info.run_id,))
    con.execute("DELETE FROM runs WHERE run_uuid = ?", (template.info.run_id,))
    mcols = [r[1] for r in con.execute("PRAGMA table_info(metrics)")]
    lcols = [r[1] for r in con.execute("PRAGMA table_info(latest_metrics)")]

    def metric_row(c, key, value, ts, step, rid):
        d = {"key": key, "value": value, "timestamp": ts, "step": step, "is_nan": 0, "run_uuid": rid}
        return tuple(d.get(k) for k in c)

    run_rows, metric_rows, latest_rows, param_rows, tags = [], [], [], [], []
    last_id = None
    for i in range(runs):
        rid = uuid.uuid4().hex
        last_id = rid
        r = dict(row)
        r.update(run_uuid=rid, name="run-%d" % i, start_time=t0 + i * 1000, end_time=t0 + i * 1000 + 900,
                 artifact_uri=row["artifact_uri"].replace(template.info.run_id, rid))
        run_rows.append(tuple(r[c] for c in cols))
        ts = t0 + i * 1000 + 500
        for key, v in (("rmse", unit(i)), ("r2", 1 - unit(i + 7))):
            metric_rows.append(metric_row(mcols, key, v, ts, 0, rid))
            latest_rows.append(metric_row(lcols, key, v, ts, 0, rid))
        param_rows += [("alpha", ["0.01", "0.1", "1"][i % 3], rid), ("solver", ["cholesky", "qr"][i % 2], rid)]
        tags += [(k, ("run-%d" % i) if k == "mlflow.runName" else v, rid) for k, v in tag_rows]
    mark = lambda c: ",".join("?" * len(c))
    con.executemany("INSERT INTO runs (%s) VALUES (%s)" % (",".join(cols), mark(cols)), run_rows)
    con.executemany("INSERT INTO metrics (%s) VALUES (%s)" % (",".join(mcols), mark(mcols)), metric_rows)
    con.executemany("INSERT INTO latest_metrics (%s) VALUES (%s)" % (",".join(lcols), mark(lcols)), latest_rows)
    con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows)
    con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
    lid, start = long_run.info.run_id, long_run.info.start_time
    con.executemany("INSERT INTO metrics (%s) VALUES (%s)" % (",".join(mcols), mark(mcols)),
                    (metric_row(mcols, "loss", loss_at(s), start + s, s, lid) for s in range(points)))
    con.execute("INSERT INTO latest_metrics (%s) VALUES (%s)" % (",".join(lcols), mark(lcols)),
                metric_row(lcols, "loss", loss_at(points - 1), start + points - 1, points - 1, lid))
    con.executemany("INSERT INTO metrics (%s) VALUES (%s)" % (",".join(mcols), mark(mcols)),
                    (metric_row(mcols, "loss", loss_at(s * 1000), t0 + s, s, last_id) for s in range(1000)))
    con.commit()
    con.close()
    print(json.dumps({"experiment_id": exp_id, "long_run": lid, "short_run": last_id,
                      "seed_seconds": time.time() - started}))


if __name__ == "__main__":
    main()
