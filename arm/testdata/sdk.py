"""Drives the unchanged azure-ai-ml SDK against a Wharf server.

Configuration comes from the environment (WHARF_SDK_*); each step prints
one JSON line "{step: result}" for the Go test to check.
"""
import contextlib
import io
import json
import os
import sys
import tempfile
import time

from azure.ai.ml import Input, command
from azure.ai.ml.entities import Environment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from sdkclient import base, client, report, tenant, workspace


steps = sys.argv[1:]

if "workspace" in steps:
    ws = client("WHARF_SDK_WRITER").workspaces.get(workspace)
    report("workspace", {"name": ws.name, "location": ws.location, "discovery_url": ws.discovery_url})

if "denied" in steps:
    # A Reader of the workspace may read it, and nothing more.
    reader = client("WHARF_SDK_READER")
    reader.workspaces.get(workspace)
    try:
        reader.environments.create_or_update(Environment(name="not-mine", version="1", image="python:3.11-slim"))
        report("denied", {"status": "allowed"})
    except HttpResponseError as e:
        report("denied", {"status": e.status_code, "type": type(e).__name__, "message": e.message})

if "environment" in steps:
    ml = client("WHARF_SDK_WRITER")
    conda = {"name": "sdk", "channels": ["conda-forge"], "dependencies": ["python=3.11", {"pip": ["scikit-learn==1.5.2"]}]}
    ml.environments.create_or_update(Environment(name="sdk-env", version="1", image="python:3.11-slim", conda_file=conda))
    env = ml.environments.get("sdk-env", version="1")
    versions = [e.version for e in ml.environments.list(name="sdk-env")]
    try:
        ml.environments.get("sdk-env", version="9")
        missing = "found"
    except ResourceNotFoundError:
        missing = "ResourceNotFoundError"
    report("environment", {"image": env.image, "conda": env.conda_file, "versions": versions, "missing": missing})

if "cloud_kwarg" in steps:
    # The cloud named in code: no metadata document is fetched.
    host = base.split("://", 1)[1]
    ws = client(
        "WHARF_SDK_WRITER",
        cloud="WharfInCode",
        cloud_metadata={
            "azure_portal": base,
            "resource_manager": base + "/",
            "active_directory": base + "/",
            "aml_resource_id": base + "/",
            "storage_endpoint": host,
            "registry_discovery_endpoint": base + "/",
        },
    ).workspaces.get(workspace)
    report("cloud_kwarg", {"name": ws.name})

if "jobs" in steps:
    ml = client("WHARF_SDK_WRITER")
    job = ml.jobs.get(os.environ["WHARF_SDK_JOB"])
    listed = [j.name for j in ml.jobs.list()]
    try:
        ml.jobs.get("no-such-job")
        missing = "found"
    except ResourceNotFoundError:
        missing = "ResourceNotFoundError"
    report("jobs", {"name": job.name, "type": job.type, "status": job.status, "command": job.command,
                    "environment": str(job.environment), "compute": job.compute,
                    "studio": job.studio_url, "listed": listed, "missing": missing,
                    # A job's inputs read back are the SDK's input objects,
                    # a literal's holding its value as data.
                    "inputs": {k: {"type": v._data.type, "path": v._data.path} if isinstance(v._data, Input) else {"value": str(v._data)}
                               for k, v in job.inputs.items()},
                    "outputs": {k: {"type": v.type, "path": v.path} for k, v in job.outputs.items()}})

if "model_endpoint" in steps:
    # Register a model from a local folder (the SDK uploads it to the
    # default datastore), deploy it behind a key endpoint and score.
    from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

    ml = client("WHARF_SDK_WRITER")
    registered = ml.models.create_or_update(Model(name="taxi-model", type="mlflow_model", path=os.environ["WHARF_SDK_MODEL_DIR"]))
    again = ml.models.create_or_update(Model(
        name="taxi-model", version=registered.version, type="mlflow_model", path=os.environ["WHARF_SDK_MODEL_DIR"]))
    model = ml.models.get("taxi-model", version=registered.version)
    listed = [m.version for m in ml.models.list(name="taxi-model")]
    names = [m.name for m in ml.models.list()]

    endpoint = ManagedOnlineEndpoint(name="taxi-ep", auth_mode="key")
    ep = ml.online_endpoints.begin_create_or_update(endpoint).result()
    deployment = ManagedOnlineDeployment(name="blue", endpoint_name="taxi-ep", model=model.id,
                                         instance_type="Standard_DS2_v2", instance_count=1)
    dep = ml.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {"blue": 100}
    ep = ml.online_endpoints.begin_create_or_update(endpoint).result()
    answer = ml.online_endpoints.invoke(endpoint_name="taxi-ep", request_file=os.environ["WHARF_SDK_REQUEST"])
    keys = ml.online_endpoints.get_keys("taxi-ep")
    deployments = [d.name for d in ml.online_deployments.list("taxi-ep")]
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="taxi-tok", auth_mode="aml_token")).result()
    token = ml.online_endpoints.get_keys("taxi-tok")
    ml.online_endpoints.begin_regenerate_keys("taxi-ep", key_type="primary").result()
    regenerated = ml.online_endpoints.get_keys("taxi-ep")
    report("model_endpoint", {
        "version": registered.version, "again": again.version, "type": model.type, "flavors": model.flavors,
        "listed": listed, "names": names,
        "endpoint_state": ep.provisioning_state, "traffic": ep.traffic, "scoring_uri": ep.scoring_uri,
        "deployment_state": dep.provisioning_state, "deployment_model": dep.model, "deployments": deployments,
        "predictions": json.loads(answer), "key_length": len(keys.primary_key),
        "primary_changed": regenerated.primary_key != keys.primary_key,
        "secondary_kept": regenerated.secondary_key == keys.secondary_key,
        "token_type": type(token).__name__, "token_length": len(token.access_token or ""),
    })

if "model_denied" in steps:
    # A Reader may list models and endpoints, and register or deploy none.
    from azure.ai.ml.entities import ManagedOnlineEndpoint, Model

    reader = client("WHARF_SDK_READER")
    listed = [m.name for m in reader.models.list()]
    out = {"listed": listed}
    for what, call in [
        ("model", lambda: reader.models.create_or_update(Model(name="not-mine", version="1", path="azureml://datastores/workspaceblobstore/paths/nothing"))),
        ("endpoint", lambda: reader.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="not-mine")).result()),
        ("keys", lambda: reader.online_endpoints.get_keys("taxi-ep")),
    ]:
        try:
            call()
            out[what] = {"status": "allowed"}
        except HttpResponseError as e:
            out[what] = {"status": e.status_code, "type": type(e).__name__, "message": e.message}
    report("model_denied", out)

if "endpoint_delete" in steps:
    ml = client("WHARF_SDK_WRITER")
    ml.online_endpoints.begin_delete("taxi-ep").result()
    try:
        ml.online_endpoints.get("taxi-ep")
        deleted = "found"
    except ResourceNotFoundError:
        deleted = "ResourceNotFoundError"
    report("endpoint_delete", {"deleted": deleted})

if "data" in steps:
    # A data asset of a file on the default datastore, numbered by Wharf.
    from azure.ai.ml.entities import Data

    ml = client("WHARF_SDK_WRITER")
    uri = "azureml://datastores/workspaceblobstore/paths/" + os.environ["WHARF_SDK_DATA_PATH"]
    first = ml.data.create_or_update(Data(name="taxi-data", version="1", type="uri_file", path=uri))
    second = ml.data.create_or_update(Data(name="taxi-data", type="uri_file", path=uri, description="again"))
    got = ml.data.get("taxi-data", version="1")
    latest = ml.data.get("taxi-data", label="latest")
    versions = sorted(d.version for d in ml.data.list(name="taxi-data"))
    names = [d.name for d in ml.data.list()]
    report("data", {"first": first.version, "second": second.version, "type": got.type, "path": got.path,
                    "latest": latest.version, "versions": versions, "names": names})

def sdk_env(ml):
    ml.environments.create_or_update(Environment(name="sdk-env", version="1", image="python:3.11-slim"))


if "submit" in steps:
    # A command job with a local code folder and a local uri_file input,
    # both uploaded by the SDK, streamed until it ends.
    ml = client("WHARF_SDK_WRITER")
    sdk_env(ml)
    work = tempfile.mkdtemp()
    src = os.path.join(work, "src")
    os.makedirs(src)
    with open(os.path.join(src, "train.py"), "w") as f:
        f.write("import sys\n"
                "rows = open(sys.argv[1]).read().splitlines()\n"
                "print('header:', rows[0])\n"
                "print('rows:', len(rows) - 1)\n")
    data = os.path.join(work, "trips.csv")
    with open(data, "w") as f:
        f.write("distance,fare\n1.5,7.0\n3.2,12.5\n8.0,25.0\n")
    job = ml.jobs.create_or_update(command(
        code=src, command="python train.py ${{inputs.trips}}",
        inputs={"trips": Input(type="uri_file", path=data)},
        environment="azureml:sdk-env:1", compute="cpu-cluster", experiment_name="sdk-jobs",
        display_name="train from the SDK"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ml.jobs.stream(job.name)
    done = ml.jobs.get(job.name)
    # The same upload again finds the code by its hash.
    again = ml.jobs.create_or_update(command(
        code=src, command="python train.py ${{inputs.trips}}",
        inputs={"trips": Input(type="uri_file", path=data)},
        environment="azureml:sdk-env:1", compute="cpu-cluster", experiment_name="sdk-jobs"))
    report("submit", {"name": job.name, "created_status": job.status, "status": done.status,
                      "studio": done.studio_url, "streamed": out.getvalue(),
                      "code": str(job.code), "code_again": str(again.code),
                      "input_path": done.inputs["trips"].path, "input_type": done.inputs["trips"].type})

if "cancel" in steps:
    ml = client("WHARF_SDK_WRITER")
    sdk_env(ml)
    job = ml.jobs.create_or_update(command(
        command="python -c \"import time; print('waiting', flush=True); time.sleep(600)\"",
        environment="azureml:sdk-env:1", compute="cpu-cluster", experiment_name="sdk-jobs"))
    deadline = time.time() + 120
    while ml.jobs.get(job.name).status != "Running" and time.time() < deadline:
        time.sleep(0.5)
    running = ml.jobs.get(job.name).status
    ml.jobs.begin_cancel(job.name).result()
    report("cancel", {"name": job.name, "running": running, "status": ml.jobs.get(job.name).status})

if "denied_job" in steps:
    reader = client("WHARF_SDK_READER")
    try:
        reader.jobs.create_or_update(command(command="echo no", environment="azureml:sdk-env:1", compute="cpu-cluster"))
        report("denied_job", {"status": "allowed"})
    except HttpResponseError as e:
        report("denied_job", {"status": e.status_code, "type": type(e).__name__, "message": e.message})

if "unknown_path" in steps:
    try:
        client("WHARF_SDK_WRITER").batch_endpoints.get("nothing-here")
        report("unknown_path", {"type": "found"})
    except ResourceNotFoundError as e:
        report("unknown_path", {"type": type(e).__name__, "status": e.status_code})

if "blobs" in steps:
    # azure-storage-blob, as the SDK sets it up for a datastore, against
    # the Blob API: a file sent in blocks, metadata, listing by prefix
    # and a ranged download.
    from azure.ai.ml._artifacts._artifact_utilities import get_datastore_info
    from azure.storage.blob import ContainerClient

    ml = client("WHARF_SDK_WRITER")
    ds = ml.datastores.get("workspaceblobstore")
    info = get_datastore_info(ml.datastores, "workspaceblobstore")
    container = ContainerClient(info["account_url"], info["container_name"], credential=info["credential"],
                                max_single_put_size=4096, max_block_size=4096, max_chunk_get_size=4096,
                                max_single_get_size=4096)
    data = bytes(range(256)) * 100  # 25,600 bytes: seven blocks
    container.upload_blob("big/data.bin", data, metadata={"origin": "sdk"})
    container.upload_blob("big/small.txt", b"small", overwrite=True)
    container.upload_blob("other/x.txt", b"x")
    blob = container.get_blob_client("big/data.bin")
    blob.set_blob_metadata({"upload_status": "completed", "name": "d"})
    props = blob.get_blob_properties()
    listed = [(b.name, b.size, dict(b.metadata or {})) for b in container.list_blobs(name_starts_with="big/", include=["metadata"])]
    report("blobs", {
        "datastore": {"type": str(ds.type), "account": ds.account_name, "container": ds.container_name,
                      "credentials": type(ds.credentials).__name__},
        "account_url": info["account_url"],
        "size": props.size, "metadata": dict(props.metadata),
        "listed": listed,
        "same": blob.download_blob().readall() == data,
        "range": list(blob.download_blob(offset=300, length=4).readall()),
    })

if "component" in steps:
    # A command component using the environment "environment" created.
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CommandComponent

    ml = client("WHARF_SDK_WRITER")
    component = CommandComponent(
        name="taxi_train", version="1", display_name="Train the taxi model",
        command='"$WHARF" train linear-regression --train-data ${{inputs.train_data}} --target cost'
                " --model-output ${{outputs.model_output}}",
        inputs={"train_data": Input(type="uri_folder")},
        outputs={"model_output": Output(type="mlflow_model")},
        environment="azureml:sdk-env:1",
    )
    created = ml.components.create_or_update(component)
    got = ml.components.get("taxi_train", version="1")
    listed = [c.version for c in ml.components.list(name="taxi_train")]
    try:
        ml.components.create_or_update(CommandComponent(name="taxi_bad", version="1", command="echo hi",
                                                        environment="azureml:no-such-env:1"))
        refused = {"status": "allowed"}
    except HttpResponseError as e:
        refused = {"status": e.status_code, "message": e.message}
    report("component", {"version": created.version, "command": got.command, "environment": str(got.environment),
                         "inputs": sorted(got.inputs), "outputs": sorted(got.outputs), "listed": listed,
                         "refused": refused})

if "compute" in steps:
    c = client("WHARF_SDK_WRITER").compute.get("cpu-cluster")
    report("compute", {"name": c.name, "type": c.type, "max": c.max_instances, "state": c.provisioning_state})

if "score_script" in steps:
    # A deployment of a scoring script the SDK uploads (code_configuration)
    # with an environment given inline, which the SDK registers itself,
    # and one with a registered environment; invoke answers what run()
    # returns.
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

    ml = client("WHARF_SDK_WRITER")
    sdk_env(ml)
    work = tempfile.mkdtemp()
    os.makedirs(os.path.join(work, "model"))
    with open(os.path.join(work, "model", "weights.txt"), "w") as f:
        f.write("2.5")
    os.makedirs(os.path.join(work, "src"))
    with open(os.path.join(work, "src", "score.py"), "w") as f:
        f.write("import json, os\n"
                "weight = None\n"
                "def init():\n"
                "    global weight\n"
                "    with open(os.path.join(os.environ['AZUREML_MODEL_DIR'], 'model', 'weights.txt')) as f:\n"
                "        weight = float(f.read())\n"
                "def run(raw_data):\n"
                "    data = json.loads(raw_data)['data']\n"
                "    return {'scaled': [weight * x for x in data], 'by': os.environ.get('SCORED_BY', '')}\n")
    request = os.path.join(work, "request.json")
    with open(request, "w") as f:
        json.dump({"data": [1.0, 4.0]}, f)
    model = ml.models.create_or_update(Model(name="scaler", type="custom_model", path=os.path.join(work, "model")))
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="scaler-ep", auth_mode="key")).result()
    answers, states = {}, {}
    for name, env in [("inline", Environment(image="python:3.11-slim")), ("registered", "azureml:sdk-env:1")]:
        dep = ml.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name=name, endpoint_name="scaler-ep", model=model.id,
            code_configuration=CodeConfiguration(code=os.path.join(work, "src"), scoring_script="score.py"),
            environment=env, environment_variables={"SCORED_BY": name},
            instance_type="Standard_DS2_v2", instance_count=1)).result()
        states[name] = {"state": dep.provisioning_state, "script": dep.code_configuration.scoring_script,
                        "environment": str(dep.environment)}
        answers[name] = json.loads(ml.online_endpoints.invoke(endpoint_name="scaler-ep", deployment_name=name, request_file=request))
    report("score_script", {"states": states, "answers": answers})

if "federated" in steps:
    # ClientAssertionCredential, its assertion fetched at each token request
    # from a CI system's token service, as a workflow's is: Wharf trades it
    # for its own token when a federated credential of the principal
    # trusts the assertion's issuer and subject.
    import urllib.request

    from azure.ai.ml import MLClient
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientAssertionCredential

    def assertion(url):
        def fetch():
            req = urllib.request.Request(url + "?audience=api://AzureADTokenExchange",
                                         headers={"Authorization": "bearer " + os.environ["WHARF_SDK_REQUEST_TOKEN"]})
            with urllib.request.urlopen(req) as resp:
                return json.load(resp)["value"]
        return fetch

    def federated(url):
        cred = ClientAssertionCredential(tenant, os.environ["WHARF_SDK_WRITER_CLIENT_ID"], assertion(url), authority=base)
        return MLClient(cred, "sub-1", "rg-1", workspace, enable_telemetry=False)

    ml = federated(os.environ["WHARF_SDK_TRUSTED_TOKENS"])
    env = ml.environments.create_or_update(Environment(name="federated-env", version="1", image="python:3.11-slim"))
    out = {"workspace": ml.workspaces.get(workspace).name, "environment": env.name}
    try:
        federated(os.environ["WHARF_SDK_UNTRUSTED_TOKENS"]).workspaces.get(workspace)
        out["untrusted"] = {"type": "allowed"}
    except ClientAuthenticationError as e:
        out["untrusted"] = {"type": type(e).__name__, "message": e.message}
    report("federated", out)

if "data_readback" in steps:
    # A uri_folder data asset of a local folder, which the SDK uploads;
    # the path data.get answers is read back through the Blob API, by the
    # SDK's own download of an azureml:// datastore URI (what
    # jobs.download uses), with the datastore's signature.
    from azure.ai.ml._artifacts._artifact_utilities import download_artifact_from_aml_uri
    from azure.ai.ml.entities import Data

    ml = client("WHARF_SDK_WRITER")
    work = tempfile.mkdtemp()
    folder = os.path.join(work, "trips")
    os.makedirs(os.path.join(folder, "2024"))
    files = {"2024/january.csv": "distance,fare\n1.5,7.0\n", "2024/february.csv": "distance,fare\n3.2,12.5\n", "README.txt": "taxi trips\n"}
    for rel, text in files.items():
        with open(os.path.join(folder, rel), "w") as f:
            f.write(text)
    ml.data.create_or_update(Data(name="trips", version="1", type="uri_folder", path=folder))
    path = ml.data.get("trips", version="1").path
    dest = os.path.join(work, "back")
    download_artifact_from_aml_uri(uri=path, destination=dest, datastore_operation=ml.datastores)
    back = {}
    for root, _, names in os.walk(dest):
        for n in names:
            with open(os.path.join(root, n)) as f:
                back[os.path.relpath(os.path.join(root, n), dest)] = f.read()
    report("data_readback", {"path": path, "sent": files, "back": back})

if "download" in steps:
    # jobs.download of a job's folder output: the SDK looks up the
    # output's datastore URI and downloads the files below it through the
    # Blob API.
    from azure.ai.ml import Output

    ml = client("WHARF_SDK_WRITER")
    sdk_env(ml)
    job = ml.jobs.create_or_update(command(
        command="mkdir -p ${{outputs.result}}/parts && echo 0.91 > ${{outputs.result}}/r2.txt"
                " && echo first > ${{outputs.result}}/parts/1.txt",
        outputs={"result": Output(type="uri_folder")},
        environment="azureml:sdk-env:1", compute="cpu-cluster"))
    with contextlib.redirect_stdout(io.StringIO()):
        ml.jobs.stream(job.name)
    dest = tempfile.mkdtemp()
    ml.jobs.download(job.name, output_name="result", download_path=dest)
    files = {}
    for root, _, names in os.walk(dest):
        for n in names:
            with open(os.path.join(root, n)) as f:
                files[os.path.relpath(os.path.join(root, n), dest)] = f.read()
    report("download", {"name": job.name, "files": files})

if "uploads" in steps:
    # What the SDK uploads itself (LocalUpload): a job's code folder and
    # local input file, and a data asset's local folder; the Go test finds
    # them in the default datastore's container.
    from azure.ai.ml.entities import Data

    ml = client("WHARF_SDK_WRITER")
    sdk_env(ml)
    work = tempfile.mkdtemp()
    src = os.path.join(work, "src")
    os.makedirs(os.path.join(src, "lib"))
    sent = {"src/train.py": "print(open('lib/words.txt').read())\n", "src/lib/words.txt": "from the code\n",
            "trips.csv": "distance,fare\n1.5,7.0\n", "folder/a.csv": "a,1\n", "folder/part/b.csv": "b,2\n"}
    sent = {rel: text + os.environ.get("WHARF_SDK_UPLOAD_TAG", "") + "\n" for rel, text in sent.items()}
    for rel, text in sent.items():
        os.makedirs(os.path.dirname(os.path.join(work, rel)), exist_ok=True)
        with open(os.path.join(work, rel), "w") as f:
            f.write(text)
    trips = Input(type="uri_file", path=os.path.join(work, "trips.csv"))
    job = ml.jobs.create_or_update(command(
        code=src, command="python train.py && cat ${{inputs.trips}}", inputs={"trips": trips},
        environment="azureml:sdk-env:1", compute="cpu-cluster", experiment_name="sdk-jobs"))
    name = "uploaded-" + os.environ.get("WHARF_SDK_UPLOAD_TAG", "x").replace("_", "-")
    ml.data.create_or_update(Data(name=name, version="1", type="uri_folder", path=os.path.join(work, "folder")))
    report("uploads", {"sent": sent,
                       "data": ml.data.get(name, version="1").path})
