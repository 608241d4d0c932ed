"""Submits a command job through the unchanged azure-ai-ml SDK and streams
it with jobs.stream, printing {"stream": {...}} for the Go test.

Configuration: WHARF_URL (the server, the token authority), WHARF_TENANT,
WHARF_CLIENT_ID, WHARF_CLIENT_SECRET, WHARF_WORKSPACE.
"""
import contextlib
import io
import json
import os

from azure.ai.ml import MLClient, command
from azure.ai.ml.entities import Environment
from azure.identity import ClientSecretCredential

credential = ClientSecretCredential(
    os.environ["WHARF_TENANT"], os.environ["WHARF_CLIENT_ID"], os.environ["WHARF_CLIENT_SECRET"],
    authority=os.environ["WHARF_URL"], disable_instance_discovery=True)
ml = MLClient(credential, "sub", "rg", os.environ["WHARF_WORKSPACE"], enable_telemetry=False)
ml.environments.create_or_update(Environment(name="shell", version="1", image="python:3.11-slim"))
job = ml.jobs.create_or_update(command(
    command="echo 'first line from the step'; sleep 3; echo 'last line from the step'",
    environment="azureml:shell:1", compute="cpu-cluster", experiment_name="streamed"))
out = io.StringIO()
with contextlib.redirect_stdout(out):
    ml.jobs.stream(job.name)
done = ml.jobs.get(job.name)
print("\n" + json.dumps({"stream": {"name": job.name, "status": done.status, "streamed": out.getvalue()}}))
