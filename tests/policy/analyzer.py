"""The policy pack started the way the Pulumi CLI starts it, reached over its gRPC protocol."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PACK = Path(__file__).resolve().parents[2] / "policy"


@contextmanager
def analyzer_stub(python: str | Path) -> Iterator[Any]:
    """An ``AnalyzerStub`` of the pack in ``policy/`` run by ``python``.

    ``python -u __main__.py`` in the pack's directory, as ``pulumi-analyzer-policy-python``
    runs it; the pack prints the loopback port it serves on. Stopped on exit.
    """
    import grpc  # type: ignore[import-untyped,unused-ignore]
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen(
        [str(python), "-u", "__main__.py"], cwd=PACK, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().decode().strip()
        if not port.isdigit():
            proc.kill()
            pytest.fail(f"policy pack did not start: {proc.communicate()[1].decode()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def served_policies(stub: Any) -> dict[str, str]:
    """The policies the pack declares (``GetAnalyzerInfo``), in its order: name -> level."""
    from google.protobuf import empty_pb2  # type: ignore[import-untyped,unused-ignore]
    from pulumi.runtime.proto import analyzer_pb2

    info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == "hardened-k8s"
    return {p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel).lower() for p in info.policies}


def analyze(stub: Any, obj: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """What the pack reports on one Kubernetes object (``Analyze``): (policy, level, message)."""
    from google.protobuf import json_format  # type: ignore[import-untyped,unused-ignore]
    from pulumi.runtime.proto import analyzer_pb2

    group, _, version = obj["apiVersion"].rpartition("/")
    token = f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"
    name = obj["metadata"]["name"]
    request = analyzer_pb2.AnalyzeRequest(type=token, urn=f"urn:pulumi:dev::test::{token}::{name}", name=name)
    json_format.ParseDict(obj, request.properties)
    response = stub.Analyze(request, timeout=10)
    return [
        (d.policyName, analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel).lower(), d.message)
        for d in response.diagnostics
    ]
