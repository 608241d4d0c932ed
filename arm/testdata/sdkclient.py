"""The MLClient the test scripts drive, and how they report.

Configuration comes from the environment (WHARF_SDK_*); each step prints
one JSON line "{step: result}" for the Go test to check.
"""
import json
import os

from azure.ai.ml import MLClient
from azure.identity import ClientSecretCredential

base = os.environ["WHARF_SDK_URL"]
tenant = os.environ["WHARF_SDK_TENANT"]
workspace = os.environ["WHARF_SDK_WORKSPACE"]


def client(prefix, **cloud):
    """An MLClient with the client secret of principal prefix
    (WHARF_SDK_WRITER, WHARF_SDK_READER), Wharf its authority."""
    cred = ClientSecretCredential(
        tenant,
        os.environ[prefix + "_CLIENT_ID"],
        os.environ[prefix + "_SECRET"],
        authority=base,
        disable_instance_discovery=True,
    )
    return MLClient(cred, "sub-1", "rg-1", workspace, enable_telemetry=False, **cloud)


def report(step, value):
    # On a line of its own: the SDK's pollers print progress dots.
    print("\n" + json.dumps({step: value}), flush=True)
