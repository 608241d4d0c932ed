"""Drives the unchanged azure-ai-ml SDK's pipeline jobs against a Wharf server.

Configuration comes from the environment (WHARF_SDK_*), as for sdk.py;
each step prints one JSON line "{step: result}" for the Go test to check.
"""
import contextlib
import io
import os
import sys
import tempfile
import textwrap
import time

from azure.ai.ml import Input, Output, command, dsl, load_component, load_job
from azure.ai.ml.entities import Data, Environment
from azure.core.exceptions import HttpResponseError

from sdkclient import client, report


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())


def project():
    """A folder with the steps' code, a component file and the trips."""
    work = tempfile.mkdtemp()
    write(os.path.join(work, "src", "prep.py"), """
        import os, sys
        rows = open(sys.argv[1]).read().splitlines()
        kept = [rows[0]] + [r for r in rows[1:] if not r.endswith(",0")]
        os.makedirs(sys.argv[2], exist_ok=True)
        open(os.path.join(sys.argv[2], "clean.csv"), "w").write("\\n".join(kept) + "\\n")
        print("kept", len(kept) - 1, "of", len(rows) - 1)
        """)
    write(os.path.join(work, "src", "count.py"), """
        import os, sys
        rows = open(os.path.join(sys.argv[1], "clean.csv")).read().splitlines()
        os.makedirs(sys.argv[2], exist_ok=True)
        open(os.path.join(sys.argv[2], "count.txt"), "w").write("%d %s" % (len(rows) - 1, sys.argv[3]))
        """)
    write(os.path.join(work, "src", "summarize.py"), """
        import os, sys
        counted = open(os.path.join(sys.argv[1], "count.txt")).read()
        reference = len(open(sys.argv[2]).read().splitlines()) - 1
        os.makedirs(sys.argv[3], exist_ok=True)
        open(os.path.join(sys.argv[3], "summary.txt"), "w").write("%s of %d" % (counted, reference))
        """)
    write(os.path.join(work, "count.yml"), """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        type: command
        name: count_rows
        display_name: Count the rows kept
        inputs:
          clean:
            type: uri_folder
          label:
            type: string
        outputs:
          counted:
            type: uri_folder
        code: ./src
        environment: azureml:sdk-env:1
        command: python count.py ${{inputs.clean}} ${{outputs.counted}} ${{inputs.label}}
        """)
    write(os.path.join(work, "summarize.yml"), """
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        type: command
        name: summarize_rows
        version: "1"
        inputs:
          counted:
            type: uri_folder
          reference:
            type: uri_file
        outputs:
          summary:
            type: uri_folder
        code: ./src
        environment: azureml:sdk-env:1
        command: python summarize.py ${{inputs.counted}} ${{inputs.reference}} ${{outputs.summary}}
        """)
    write(os.path.join(work, "trips.csv"), "distance,fare\n1.5,7.0\n3.2,0\n8.0,25.0\n")
    return work


def setup(ml):
    ml.environments.create_or_update(Environment(name="sdk-env", version="1", image="python:3.11-slim"))


def dsl_pipeline(ml, work, registered):
    """prep (a command(...) builder, on its own compute) -> count (a
    component file, anonymous) -> summarize (a registered component), with
    a local file, a literal and a data asset as the pipeline's inputs."""
    prep = command(
        code=os.path.join(work, "src"), command="python prep.py ${{inputs.trips}} ${{outputs.clean}}",
        inputs={"trips": Input(type="uri_file")}, outputs={"clean": Output(type="uri_folder")},
        environment="azureml:sdk-env:1", display_name="prep trips")
    count = load_component(source=os.path.join(work, "count.yml"))

    @dsl.pipeline(default_compute="cpu-cluster", description="trips from the SDK")
    def trips_pipeline(trips, label, reference):
        cleaned = prep(trips=trips)
        cleaned.compute = "cpu-small"
        cleaned.environment_variables = {"TRIPS_NOTE": "from the SDK"}
        cleaned.set_limits(timeout=600)
        cleaned.resources = {"instance_count": 1}
        counted = count(clean=cleaned.outputs.clean, label=label)
        summary = registered(counted=counted.outputs.counted, reference=reference)
        return {"summary": summary.outputs.summary}

    job = trips_pipeline(trips=Input(type="uri_file", path=os.path.join(work, "trips.csv")), label="kept",
                         reference=Input(type="uri_file", path="azureml:trip-reference:1"))
    job.settings.default_datastore = "workspaceblobstore"
    job.settings.continue_on_step_failure = False
    return job


steps = sys.argv[1:]

if "dsl" in steps:
    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    work = project()
    ml.data.create_or_update(Data(name="trip-reference", version="1", type="uri_file",
                                  path=os.path.join(work, "trips.csv")))
    registered = ml.components.create_or_update(load_component(source=os.path.join(work, "summarize.yml")))
    job = ml.jobs.create_or_update(dsl_pipeline(ml, work, registered), experiment_name="sdk-pipelines")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ml.jobs.stream(job.name)
    done = ml.jobs.get(job.name)
    children = [{"name": c.name, "display_name": c.display_name, "status": c.status, "compute": c.compute}
                for c in ml.jobs.list(parent_job_name=job.name)]
    listed = {j.name: j.status for j in ml.jobs.list()}
    # The same pipeline again: its steps are the anonymous components
    # registered the first time.
    again = ml.jobs.create_or_update(dsl_pipeline(ml, work, registered), experiment_name="sdk-pipelines")
    report("dsl", {"name": job.name, "type": job.type, "created_status": job.status, "status": done.status,
                   "experiment": done.experiment_name, "steps": sorted(done.jobs), "children": children,
                   "step_computes": {n: s.compute for n, s in done.jobs.items()},
                   "inputs": sorted(done.inputs),
                   "listed": listed.get(job.name), "again": again.name,
                   "components": sorted(c.name for c in ml.components.list())})

if "load_job" in steps:
    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    work = project()
    write(os.path.join(work, "pipeline.yml"), """
        $schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
        type: pipeline
        experiment_name: sdk-yaml-pipelines
        display_name: trips from a pipeline file
        inputs:
          trips:
            type: uri_file
            path: ./trips.csv
          label: from-yaml
        outputs:
          counted:
        settings:
          default_compute: azureml:cpu-cluster
          continue_on_step_failure: false
        jobs:
          prep:
            type: command
            code: ./src
            environment: azureml:sdk-env:1
            inputs:
              trips: ${{parent.inputs.trips}}
            outputs:
              clean:
                type: uri_folder
            command: python prep.py ${{inputs.trips}} ${{outputs.clean}}
          count:
            type: command
            component: ./count.yml
            inputs:
              clean: ${{parent.jobs.prep.outputs.clean}}
              label: ${{parent.inputs.label}}
            outputs:
              counted: ${{parent.outputs.counted}}
        """)
    job = ml.jobs.create_or_update(load_job(source=os.path.join(work, "pipeline.yml")))
    with contextlib.redirect_stdout(io.StringIO()):
        ml.jobs.stream(job.name)
    done = ml.jobs.get(job.name)
    children = {c.display_name: c.status for c in ml.jobs.list(parent_job_name=job.name)}
    report("load_job", {"name": job.name, "status": done.status, "display_name": done.display_name,
                        "steps": sorted(done.jobs),
                        "experiment": done.experiment_name, "children": children})

if "cancel" in steps:
    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    wait = command(command="python -c \"import time; print('waiting', flush=True); time.sleep(600)\" ${{outputs.done}}",
                   outputs={"done": Output(type="uri_folder")}, environment="azureml:sdk-env:1")
    after = command(command="ls ${{inputs.done}}", inputs={"done": Input(type="uri_folder")},
                    environment="azureml:sdk-env:1")

    @dsl.pipeline(default_compute="cpu-cluster")
    def waiting():
        # The second step waits for the first's output, and never starts.
        after(done=wait().outputs.done)

    job = ml.jobs.create_or_update(waiting(), experiment_name="sdk-pipelines")
    deadline = time.time() + 120
    running = []
    while time.time() < deadline:
        running = [c.status for c in ml.jobs.list(parent_job_name=job.name) if c.status == "Running"]
        if running:
            break
        time.sleep(0.5)
    ml.jobs.begin_cancel(job.name).result()
    report("cancel", {"name": job.name, "running": running, "status": ml.jobs.get(job.name).status,
                      "children": sorted(c.status for c in ml.jobs.list(parent_job_name=job.name))})

if "denied_pipeline" in steps:
    # A Reader may register no step, and submit no pipeline of
    # registered components either.
    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    work = project()
    registered = ml.components.create_or_update(load_component(source=os.path.join(work, "summarize.yml")))
    reader = client("WHARF_SDK_READER")

    @dsl.pipeline(default_compute="cpu-cluster")
    def inline():
        command(command="echo no", environment="azureml:sdk-env:1")()

    @dsl.pipeline(default_compute="cpu-cluster")
    def of_registered(counted, reference):
        reader.components.get(registered.name, version=registered.version)(counted=counted, reference=reference)

    out = {}
    for what, job in [("inline", inline()),
                      ("registered", of_registered(counted=Input(type="uri_folder", path="azureml://datastores/workspaceblobstore/paths/x/"),
                                                   reference=Input(type="uri_file", path="azureml://datastores/workspaceblobstore/paths/x.csv")))]:
        try:
            reader.jobs.create_or_update(job)
            out[what] = {"status": "allowed"}
        except HttpResponseError as e:
            out[what] = {"status": e.status_code, "type": type(e).__name__, "message": e.message}
    report("denied_pipeline", out)

if "read_cli_pipeline" in steps:
    ml = client("WHARF_SDK_WRITER")
    job = ml.jobs.get(os.environ["WHARF_SDK_JOB"])
    listed = [j.name for j in ml.jobs.list()]
    report("read_cli_pipeline", {"name": job.name, "type": job.type, "status": job.status, "steps": sorted(job.jobs),
                                 "inputs": sorted(job.inputs), "listed": listed})

def sweep_project():
    """A folder with a trial that logs its loss, a function of its two
    hyperparameters, to its tracking run."""
    work = tempfile.mkdtemp()
    write(os.path.join(work, "src", "trial.py"), """
        import json, os, ssl, sys, time, urllib.request
        lr, layers = float(sys.argv[1]), int(sys.argv[2])
        loss = abs(lr - 0.01) * 10 + layers
        print("loss", loss)
        body = json.dumps({"run_id": os.environ["MLFLOW_RUN_ID"], "key": "loss", "value": loss,
                           "timestamp": int(time.time() * 1000), "step": 0}).encode()
        request = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", body,
                                         {"Content-Type": "application/json",
                                          "Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
        urllib.request.urlopen(request, context=ssl.create_default_context(cafile=os.environ.get("WHARF_SDK_CA")))
        """)
    return work


if "sweep" in steps:
    # command(...).sweep(...): four trials over a grid; the bandit policy's
    # slack lets every trial finish, whatever order they report in.
    from azure.ai.ml.sweep import BanditPolicy, Choice

    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    work = sweep_project()
    train = command(code=os.path.join(work, "src"), command="python trial.py ${{inputs.lr}} ${{inputs.layers}}",
                    inputs={"lr": 0.1, "layers": 1}, environment="azureml:sdk-env:1", compute="cpu-cluster",
                    environment_variables={"WHARF_SDK_CA": os.environ["REQUESTS_CA_BUNDLE"]})
    sweep = train(lr=Choice([0.01, 0.1]), layers=Choice([1, 2])).sweep(
        primary_metric="loss", goal="minimize", sampling_algorithm="grid",
        early_termination_policy=BanditPolicy(slack_factor=10, evaluation_interval=1))
    sweep.set_limits(max_total_trials=4, max_concurrent_trials=2, timeout=600)
    job = ml.jobs.create_or_update(sweep, experiment_name="sdk-sweeps")
    with contextlib.redirect_stdout(io.StringIO()):
        ml.jobs.stream(job.name)
    done = ml.jobs.get(job.name)
    report("sweep", {"name": job.name, "type": done.type, "status": done.status,
                     "trials": sorted(c.status for c in ml.jobs.list(parent_job_name=job.name)),
                     "properties": dict(done.properties), "search_space": sorted(done.search_space),
                     "goal": done.objective.goal, "max_total_trials": done.limits.max_total_trials})

if "sweep_yaml" in steps:
    ml = client("WHARF_SDK_WRITER")
    setup(ml)
    work = sweep_project()
    write(os.path.join(work, "sweep.yml"), """
        $schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
        type: sweep
        experiment_name: sdk-yaml-sweeps
        compute: azureml:cpu-cluster
        sampling_algorithm: random
        search_space:
          lr:
            type: uniform
            min_value: 0.01
            max_value: 0.02
          layers:
            type: choice
            values: [3]
        objective:
          goal: maximize
          primary_metric: loss
        limits:
          max_total_trials: 2
          max_concurrent_trials: 2
        trial:
          code: ./src
          command: python trial.py ${{search_space.lr}} ${{search_space.layers}}
          environment: azureml:sdk-env:1
          environment_variables:
            WHARF_SDK_CA: %s
        """ % os.environ["REQUESTS_CA_BUNDLE"])
    job = ml.jobs.create_or_update(load_job(source=os.path.join(work, "sweep.yml")))
    with contextlib.redirect_stdout(io.StringIO()):
        ml.jobs.stream(job.name)
    done = ml.jobs.get(job.name)
    report("sweep_yaml", {"name": job.name, "status": done.status, "experiment": done.experiment_name,
                          "trials": sorted(c.status for c in ml.jobs.list(parent_job_name=job.name)),
                          "properties": dict(done.properties)})
