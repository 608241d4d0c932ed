"""Drive the parts of MLflow's API where Wharf follows MLflow's exact
semantics, and print what came back as one JSON object on the last line.

The same script runs against Wharf and against a real `mlflow server` of the
client's version; the Go test compares the two objects. Ids, times and
users differ between servers by nature, so the script replaces every id it
made with a name given in order of creation, and leaves out times and user
ids; everything else must match.

Usage: parity.py  (MLFLOW_TRACKING_URI and, for Wharf, MLFLOW_TRACKING_TOKEN
set). Sections that need the 3.x client are skipped under 2.x.
"""

import json
import os
import sys
import tempfile
import time

import requests

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

V3 = int(mlflow.__version__.split(".")[0]) >= 3
BASE = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
TOKEN = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
HEADERS = {"Authorization": "Bearer " + TOKEN} if TOKEN else {}

client = MlflowClient()
out = {}
names = {}  # id -> placeholder, in order of creation


def name(kind, value):
    """Remember value (an id the script made) as kind-N."""
    if value not in names:
        names[value] = "%s-%d" % (kind, sum(1 for v in names.values() if v.startswith(kind + "-")) + 1)
    return value


DROP = {"creation_timestamp", "last_updated_timestamp", "creation_timestamp_ms",
        "last_updated_timestamp_ms", "start_time", "end_time", "user_id", "creator_id",
        "creation_time", "last_update_time", "sqlstate", "error_class", "stack_trace",
        # MLflow 3 names its own workspace on experiments; a Wharf
        # workspace is in the tracking URI instead.
        "workspace"}


def clean(obj):
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in sorted(obj.items()) if k not in DROP}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def call(method, path, **kw):
    """A raw request below the tracking URI: status and JSON body (or text)."""
    r = requests.request(method, BASE + path, headers=HEADERS, timeout=60, **kw)
    try:
        body = r.json()
    except ValueError:
        body = r.text
    return {"status": r.status_code, "body": body}


def error_of(fn):
    try:
        fn()
    except MlflowException as e:
        return {"error_code": e.error_code, "message": e.message}
    return "no error"


def tick():
    # Versions updated in the same millisecond tie on the default order's
    # first key; a pause makes the order the same on both servers.
    time.sleep(0.02)


exp_id = client.create_experiment("parity")
run = client.create_run(exp_id, run_name="train", start_time=1000)
run_id = name("run", run.info.run_id)
other_run_id = name("run", client.create_run(exp_id, run_name="other", start_time=2000).info.run_id)

# --- The routes MLflow's UI calls -----------------------------------------

# A history with repeated steps, and one value per step in the other run.
for i in range(30):
    client.log_metric(run_id, "loss", 1.0 / (i + 1), timestamp=10_000 + i, step=i // 2)
for i in range(5):
    client.log_metric(other_run_id, "loss", float(i), timestamp=20_000 + i, step=i)
ui = {}
ajax = "/ajax-api/2.0/mlflow/"
ui["bulk"] = call("GET", ajax + "metrics/get-history-bulk",
                  params={"run_id": [other_run_id, run_id], "metric_key": "loss"})
# Bulk histories come ordered by run id, which is random: check that order
# here, then order by the runs' names so that both servers compare.
ms = ui["bulk"]["body"].get("metrics", []) if isinstance(ui["bulk"]["body"], dict) else []
ui["bulk_by_run_id"] = [m["run_id"] for m in ms] == sorted(m["run_id"] for m in ms)
ms.sort(key=lambda m: names.get(m["run_id"], m["run_id"]))
ui["bulk_limited"] = call("GET", ajax + "metrics/get-history-bulk",
                          params={"run_id": [run_id], "metric_key": "loss", "max_results": 4})
ui["bulk_no_run"] = call("GET", ajax + "metrics/get-history-bulk", params={"metric_key": "loss"})

# The sampled history (MLflow 3; 2.x has no such route).
if V3:
    for label, params in {
        "interval": {"max_results": 7},
        "interval_steps": {"max_results": 4, "start_step": 3, "end_step": 9},
        "interval_one": {"max_results": 1},
        "interval_all": {},
        "interval_half_range": {"start_step": 3},
        "interval_reversed": {"start_step": 9, "end_step": 3},
        "interval_zero": {"max_results": 0},
    }.items():
        ui[label] = call("GET", ajax + "metrics/get-history-bulk-interval",
                         params={"run_ids": [run_id, other_run_id], "metric_key": "loss", **params})
    ui["interval_api"] = call("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval",
                              params={"run_ids": [other_run_id], "metric_key": "loss", "max_results": 3})
    ui["interval_unknown_run"] = call("GET", ajax + "metrics/get-history-bulk-interval",
                                      params={"run_ids": ["f" * 32], "metric_key": "loss"})

# Datasets, with and without a context.
for ds_name, digest, context in [("train-ds", "d1", "training"), ("eval-ds", "d2", "eval"), ("raw-ds", "d3", None)]:
    tags = [InputTag("mlflow.data.context", context)] if context else []
    client.log_inputs(run_id, [DatasetInput(Dataset(ds_name, digest, "local", "file:///x"), tags)])
client.log_inputs(other_run_id, [DatasetInput(Dataset("train-ds", "d1", "local", "file:///x"),
                                              [InputTag("mlflow.data.context", "validation")])])
found = call("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", json={"experiment_ids": [exp_id]})
if isinstance(found["body"], dict):
    found["body"]["dataset_summaries"] = sorted(found["body"].get("dataset_summaries", []),
                                                key=lambda d: json.dumps(d, sort_keys=True))
ui["datasets"] = found
ui["datasets_none"] = call("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets", json={})

# Files written and read back through the UI's artifact routes.
ui["upload"] = call("POST", "/ajax-api/2.0/mlflow/upload-artifact",
                    params={"run_uuid": run_id, "path": "notes/hello.txt"}, data=b"hello from the UI")
ui["upload_no_path"] = call("POST", "/ajax-api/2.0/mlflow/upload-artifact", params={"run_uuid": run_id}, data=b"x")
ui["upload_empty"] = call("POST", "/ajax-api/2.0/mlflow/upload-artifact",
                          params={"run_uuid": run_id, "path": "empty.txt"}, data=b"")
ui["listed"] = sorted(f.path for f in client.list_artifacts(run_id, "notes"))
got = requests.get(BASE + "/get-artifact", params={"run_uuid": run_id, "path": "notes/hello.txt"},
                   headers=HEADERS, timeout=60)
ui["get_artifact"] = [got.status_code, got.text]
got = requests.get(BASE + "/get-artifact", params={"run_uuid": run_id, "path": "../escape"},
                   headers=HEADERS, timeout=60)
ui["get_artifact_unsafe"] = got.status_code
out["ui"] = ui

# --- Registry semantics ----------------------------------------------------

client.log_text(run_id, "flavors: {}\n", "model/MLmodel")
artifact_uri = client.get_run(run_id).info.artifact_uri
reg = {}
for model in ["beta", "alpha"]:
    client.create_registered_model(model)
sources = {
    "runs": "runs:/%s/model" % run_id,
    "proxy": artifact_uri + "/model",
    "s3": "s3://bucket/path/model",
}
made = []
for model, src in [("beta", "runs"), ("alpha", "proxy"), ("beta", "s3"), ("alpha", "runs"), ("beta", "proxy")]:
    tick()
    mv = client.create_model_version(model, sources[src], run_id=run_id if src != "s3" else None)
    made.append([model, mv.version, src])
tick()
client.update_model_version("beta", "1", description="touched last")
reg["made"] = made
reg["default_order"] = [[v.name, v.version] for v in client.search_model_versions()]
pages, token = [], None
while True:
    page = client.search_model_versions(max_results=2, page_token=token)
    pages.append([[v.name, v.version] for v in page])
    token = page.token
    if not token:
        break
reg["pages"] = pages
reg["ordered"] = [[v.name, v.version] for v in client.search_model_versions(order_by=["name DESC"])]
reg["duplicate_order"] = call("GET", "/api/2.0/mlflow/model-versions/search",
                              params={"order_by": ["name", "name DESC"]})["body"]["message"]
raw = call("GET", "/api/2.0/mlflow/model-versions/get", params={"name": "alpha", "version": "1"})["body"]
reg["raw_version"] = {k: raw["model_version"].get(k, "<absent>") for k in ["description", "run_link", "run_id", "source"]}
reg["download"] = {
    "%s/%s (%s)" % (m, v, s): client.get_model_version_download_uri(m, v) for m, v, s in made
}
reg["mv_artifact"] = {}
# (MLflow's server fails on a runs:/ source here, with a 500 about its own
# tracking URI; Wharf serves the run's files. Only the proxy source is
# compared.)
for m, v, s in made[1:2]:
    got = requests.get(BASE + "/model-versions/get-artifact", params={"name": m, "version": v, "path": "MLmodel"},
                       headers=HEADERS, timeout=60)
    reg["mv_artifact"][s] = [got.status_code, got.text]

if V3:
    refused = {
        "local": ("/tmp/somewhere/model", None),
        "local_with_run": ("/tmp/somewhere/model", run_id),
        "file_uri": ("file:///tmp/somewhere/model", None),
        "dotdot": ("s3://bucket/a/../b", None),
        "dotdot_quoted": ("s3://bucket/a/%2E%2E/b", None),
        "proxy_dotdot": (artifact_uri + "/../../other", run_id),
        "proxy_other_run": (artifact_uri + "/model", other_run_id),
        "proxy_no_run": (artifact_uri + "/model", None),
        "runs_other_run": ("runs:/%s/model" % run_id, other_run_id),
        "runs_no_run": ("runs:/%s/model" % run_id, None),
        "bucket_only": ("s3://bucket", None),
    }
    reg["refused"] = {
        label: error_of(lambda s=src, r=rid: client.create_model_version("alpha", s, run_id=r))
        for label, (src, rid) in refused.items()
    }
    tick()
    lineage = client.create_model_version("alpha", "models:/beta/2")
    reg["lineage"] = {"source": lineage.source, "run_id": lineage.run_id,
                      "download": client.get_model_version_download_uri("alpha", lineage.version)}
out["registry"] = reg

# --- Logged-model links (MLflow 3) ------------------------------------------

if V3:
    from mlflow.entities import LoggedModelInput

    links = {}
    lm_a = name("model", client.create_logged_model(exp_id, name="lm-a", source_run_id=run_id,
                                                    params={"alpha": "0.5"}, tags={"team": "x"}).model_id)
    lm_b = name("model", client.create_logged_model(exp_id, name="lm-b", source_run_id=run_id).model_id)
    lm_c = name("model", client.create_logged_model(exp_id, name="lm-c").model_id)
    client.log_metric(run_id, "acc", 0.7, timestamp=100, step=1, model_id=lm_a,
                      dataset_name="eval-ds", dataset_digest="d2")
    client.log_metric(run_id, "acc", 0.9, timestamp=200, step=2, model_id=lm_a,
                      dataset_name="eval-ds", dataset_digest="d2")
    client.log_metric(run_id, "acc", 0.8, timestamp=150, step=1, model_id=lm_b, dataset_name="train-ds",
                      dataset_digest="d1")
    client.log_batch(run_id, metrics=[
        Metric("f1", 0.6, 300, 0, model_id=lm_b, dataset_name="eval-ds", dataset_digest="d2"),
        Metric("f1", 0.65, 301, 0, model_id=lm_c),
        Metric("plain", 1.0, 302, 0),
    ])
    with mlflow.start_run(run_id=other_run_id):
        mlflow.log_metric("acc", 0.95, step=3, timestamp=400, model_id=lm_c)
    links["metrics"] = {
        names[m]: sorted((clean(x.to_dictionary()) for x in client.get_logged_model(m).metrics or []),
                         key=lambda d: json.dumps(d, sort_keys=True))
        for m in [lm_a, lm_b, lm_c]
    }
    raw = call("GET", "/api/2.0/mlflow/logged-models/" + lm_a)["body"]["model"]["data"]
    raw["metrics"] = sorted(raw.get("metrics", []), key=lambda d: json.dumps(d, sort_keys=True))
    links["raw_data"] = raw

    def search(**kw):
        try:
            return [m.name for m in client.search_logged_models(experiment_ids=[exp_id], **kw)]
        except MlflowException as e:
            return {"error_code": e.error_code, "message": e.message}

    links["search"] = {
        "default": search(),
        "metric_filter": search(filter_string="metrics.acc > 0.85"),
        "metric_filter_on_dataset": search(filter_string="metrics.acc > 0.75",
                                           datasets=[{"dataset_name": "eval-ds", "dataset_digest": "d2"}]),
        "datasets_only": search(datasets=[{"dataset_name": "eval-ds", "dataset_digest": "d2"}]),
        "dataset_without_digest": search(datasets=[{"dataset_name": "train-ds"}]),
        "order_metric_desc": search(order_by=[{"field_name": "metrics.acc", "ascending": False}]),
        "order_metric_asc": search(order_by=[{"field_name": "metrics.acc", "ascending": True}]),
        "order_metric_dataset": search(order_by=[{"field_name": "metrics.f1", "ascending": False,
                                                  "dataset_name": "eval-ds"}]),
        "order_name": search(order_by=[{"field_name": "name", "ascending": False}]),
        "params_and_tags": search(filter_string="params.alpha = '0.5' AND tags.team = 'x'"),
        "name_like": search(filter_string="name LIKE 'lm-%' AND metrics.f1 >= 0.6"),
        "bad_order": search(order_by=[{"field_name": "params.alpha"}]),
    }
    page = client.search_logged_models(experiment_ids=[exp_id], max_results=2)
    links["paged"] = [[m.name for m in page], bool(page.token),
                      [m.name for m in client.search_logged_models(experiment_ids=[exp_id], max_results=2,
                                                                   page_token=page.token)]]

    # A version made from a logged model tags the model with it.
    tick()
    v1 = mlflow.register_model("models:/" + lm_a, "from-logged")
    tick()
    v2 = client.create_model_version("from-logged", "models:/" + lm_a, model_id=lm_a)
    # (MLflow's SQL registry does not return a version's model_id; Wharf
    # does, so it is not compared.)
    links["registered"] = [v1.version, v2.version, v2.run_id == run_id]
    links["model_versions_tag"] = client.get_logged_model(lm_a).tags.get("mlflow.modelVersions")
    links["download"] = client.get_model_version_download_uri("from-logged", v1.version)
    links["refused"] = {
        "models_uri_without_model_id": error_of(lambda: client.create_model_version("from-logged", "models:/" + lm_b)),
        "other_model": error_of(lambda: client.create_model_version("from-logged", "models:/" + lm_b, model_id=lm_a)),
        "runs_with_model": error_of(lambda: client.create_model_version(
            "from-logged", "runs:/%s/model" % run_id, model_id=lm_a)),
    }

    # Model inputs of a run.
    client.log_inputs(other_run_id, models=[LoggedModelInput(lm_a), LoggedModelInput(lm_b)])
    client.log_inputs(other_run_id, models=[LoggedModelInput(lm_a)])
    links["model_inputs"] = sorted((i.model_id for i in client.get_run(other_run_id).inputs.model_inputs),
                                   key=lambda m: names.get(m, m))

    # Logged-model files for the UI.
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "sub"))
        with open(os.path.join(d, "MLmodel"), "w") as f:
            f.write("artifact_path: model\n")
        with open(os.path.join(d, "sub", "weights.txt"), "w") as f:
            f.write("0.1 0.2\n")
        client.log_model_artifacts(lm_b, d)
    files = ajax + "logged-models/" + lm_b + "/artifacts/"
    links["files"] = {
        "listing": call("GET", files + "directories", params={"artifact_directory_path": "sub"}),
        "file": [requests.get(BASE + files + "files", params={"artifact_file_path": "sub/weights.txt"},
                              headers=HEADERS, timeout=60).text],
        "no_path": call("GET", files + "files")["status"],
    }
    out["links"] = links

# --- Existing routes under /ajax-api ---------------------------------------

out["ajax"] = {
    "experiment": call("GET", "/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}),
    "run_name": call("GET", "/ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id})["body"]["run"]["info"]["run_name"],
    "versions": call("GET", "/ajax-api/2.0/mlflow/model-versions/search",
                     params={"filter": "name = 'alpha'"})["body"]["model_versions"][0]["version"],
    "artifacts": call("GET", "/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run_id})["body"]["files"],
    "proxy_list": call("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts",
                       params={"path": "%s/%s/artifacts" % (exp_id, run_id)})["body"],
}

text = json.dumps(clean(out), sort_keys=True)
# Longest first, so that no id is replaced inside another.
for value in sorted(names, key=len, reverse=True):
    text = text.replace(value, names[value])
print(json.dumps({"client": mlflow.__version__, "result": json.loads(text)}))
