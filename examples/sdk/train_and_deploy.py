"""Train the taxi fare model, register it, deploy it and score with it, from
the unchanged Azure ML Python SDK v2 (azure-ai-ml) against a Wharf server.

The same steps as the YAML path (examples/taxi): a command job runs Wharf's
built-in linear regression on the taxi data, its model output becomes a
version of taxi-model, and a key online endpoint serves it.

Run it like a notebook, top to bottom, with:

    ARM_CLOUD_METADATA_URL  https://<server>/metadata/endpoints
    REQUESTS_CA_BUNDLE      the server's CA, for a private one (export it
                            before Python starts)
    WHARF_TENANT, WHARF_CLIENT_ID, WHARF_CLIENT_SECRET
                            a service principal (wharf ad sp create-for-rbac)
    WHARF_URL               https://<server>, the token authority
    WHARF_WORKSPACE         the workspace
    WHARF_TAXI_DATA         the taxi CSV (wharf generate taxi)
    WHARF_TAXI_REQUEST      a scoring request (taxi-request.json)
    WHARF_COMPUTE           the compute cluster (default cpu-cluster)
"""
import json
import os

from azure.ai.ml import Input, MLClient, Output, command
from azure.ai.ml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model
from azure.identity import ClientSecretCredential

# The client: Wharf is the authority, the resource manager and the storage.
credential = ClientSecretCredential(
    os.environ["WHARF_TENANT"],
    os.environ["WHARF_CLIENT_ID"],
    os.environ["WHARF_CLIENT_SECRET"],
    authority=os.environ["WHARF_URL"],
    disable_instance_discovery=True,
)
ml_client = MLClient(credential, "wharf", "wharf", os.environ["WHARF_WORKSPACE"], enable_telemetry=False)

# The training environment. The step runs Wharf's built-in trainer, which
# needs no Python packages: the image alone, as examples/taxi's.
env = ml_client.environments.create_or_update(
    Environment(name="taxi-train-env", version="1", image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"))

# Train: the features are the scoring request's columns, in its order.
features = ("distance,dropoff_latitude,dropoff_longitude,passengers,pickup_latitude,pickup_longitude,"
            "store_forward,vendor,pickup_weekday,pickup_month,pickup_monthday,pickup_hour,pickup_minute,"
            "pickup_second,dropoff_weekday,dropoff_month,dropoff_monthday,dropoff_hour,dropoff_minute,dropoff_second")
train = command(
    display_name="train-taxi-model",
    experiment_name="taxi-fare-sdk",
    command='"$WHARF" train linear-regression --train-data ${{inputs.taxi_data}} --target cost'
            " --features " + features + " --model-output ${{outputs.model_output}}",
    inputs={"taxi_data": Input(type="uri_file", path=os.environ["WHARF_TAXI_DATA"])},
    outputs={"model_output": Output(type="mlflow_model")},
    environment=f"azureml:{env.name}:{env.version}",
    compute=os.environ.get("WHARF_COMPUTE", "cpu-cluster"),
)
job = ml_client.jobs.create_or_update(train)
ml_client.jobs.stream(job.name)
job = ml_client.jobs.get(job.name)
print(json.dumps({"job": job.name, "status": job.status}))

# Register the job's model output as the next version of taxi-model.
model = ml_client.models.create_or_update(Model(
    name="taxi-model",
    type="mlflow_model",
    path=f"azureml://jobs/{job.name}/outputs/model_output",
    description="Taxi fare linear regression, trained from the SDK",
))
print(json.dumps({"model": model.name, "version": model.version}))

# Deploy: an endpoint, a deployment of the model, then all traffic to it.
endpoint = ManagedOnlineEndpoint(name="taxi-sdk-online", auth_mode="key", description="Taxi fares, deployed from the SDK")
ml_client.online_endpoints.begin_create_or_update(endpoint).result()
deployment = ManagedOnlineDeployment(
    name="blue",
    endpoint_name=endpoint.name,
    model=f"azureml:{model.name}:{model.version}",
    instance_type="Standard_DS3_v2",
    instance_count=1,
)
ml_client.online_deployments.begin_create_or_update(deployment).result()
endpoint.traffic = {"blue": 100}
ml_client.online_endpoints.begin_create_or_update(endpoint).result()

# Score: the SDK posts the request to the endpoint's scoring URI with its key.
answer = ml_client.online_endpoints.invoke(endpoint_name=endpoint.name, request_file=os.environ["WHARF_TAXI_REQUEST"])
print(json.dumps({"endpoint": endpoint.name, "predictions": json.loads(answer)}))
