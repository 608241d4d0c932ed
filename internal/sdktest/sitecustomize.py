"""Resolves the Blob API's host names, <account>.blob.localhost, to the
loopback address for the test's Python, as a deployment's wildcard DNS
record does: the SDK builds that name itself from the cloud's storage
suffix, and nothing in the SDK is changed to reach it."""
import socket

_getaddrinfo = socket.getaddrinfo


def _blob_hosts_on_loopback(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".blob.localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _blob_hosts_on_loopback
