"""A moto server on 127.0.0.1 that the project's unchanged AWS code talks to over real HTTP.

Used by tests/test_aws_*.py. moto answers ``describe_model`` / ``describe_endpoint_config`` /
``describe_endpoint`` with ``{}`` for unset nested structures (VpcConfig, DataCaptureConfig...),
which the SageMaker SDK's pydantic shapes reject although AWS would simply omit them; the server
side of those three calls is wrapped here (in the process that runs moto) to drop empty values.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FAKE_ROLE = "arn:aws:iam::123456789012:role/SageMakerTestRole"
REGION = "us-east-1"


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {key: _drop_empty(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item != {}}
    if isinstance(value, list):
        return [_drop_empty(item) for item in value]
    return value


def _patch_moto_describe_calls() -> None:
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    if getattr(SageMakerResponse, "_empty_structs_dropped", False):
        return
    for name in ("describe_model", "describe_endpoint_config", "describe_endpoint"):
        original = getattr(SageMakerResponse, name)

        def wrapper(self, _original=original):
            return ActionResult(_drop_empty(_original(self).result))

        setattr(SageMakerResponse, name, wrapper)
    SageMakerResponse._empty_structs_dropped = True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    _patch_moto_describe_calls()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset(endpoint_url: str) -> None:
    """Forget every resource moto holds, so each test starts from an empty account."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def queue_endpoint_results(endpoint_url: str, bodies: list[Any]) -> None:
    """Results the next InvokeEndpoint calls return, in order (moto cannot run a model)."""
    payload = {
        "results": [
            {"Body": json.dumps(body), "ContentType": "application/json"} for body in bodies
        ]
    }
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
