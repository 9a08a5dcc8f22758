"""The component package's schema, asked of the real plugin over gRPC as the engine asks it.

``pulumi-resource-hardened-k8s`` (installed with the library) is started on loopback and
answers ``GetSchema``; every assertion is on that answer, which the SDK's analyzer infers
from the Args ``TypedDict``\\ s and the components' output annotations.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, is_typeddict

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

import hardened_k8s
from hardened_k8s.provider import COMPONENTS

from .args_docs import field_docs

pytestmark = pytest.mark.tools

PLUGIN = Path(sys.executable).parent / "pulumi-resource-hardened-k8s"


@pytest.fixture(scope="module")
def schema() -> Iterator[dict[str, Any]]:
    assert PLUGIN.is_file(), f"{PLUGIN} is missing; install the library (make venv)"
    # The engine's address is only dialled for Construct; GetSchema needs none.
    plugin = subprocess.Popen(
        [str(PLUGIN), "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert plugin.stdout is not None
        port = int(plugin.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            reply = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        yield json.loads(reply.schema)
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def args_of(component: type) -> type:
    args: type = typing.get_type_hints(vars(component)["__init__"])["args"]
    return args


def test_the_package_serves_each_component_under_its_token(schema: dict[str, Any]) -> None:
    assert (schema["name"], schema["version"]) == ("hardened-k8s", hardened_k8s.__version__)
    assert sorted(schema["resources"]) == sorted(f"hardened-k8s:index:{c.__name__}" for c in COMPONENTS)
    for component in COMPONENTS:
        resource = schema["resources"][f"hardened-k8s:index:{component.__name__}"]
        assert resource["isComponent"] is True
        assert resource["description"].startswith((component.__doc__ or "?").strip().splitlines()[0]), (
            component
        )
        # Dedented: Markdown would show a paragraph indented four spaces as code.
        assert not re.search(r"\n {4}", resource["description"]), component


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_inputs_are_the_args_fields_with_their_docstrings(schema: dict[str, Any], component: type) -> None:
    resource = schema["resources"][f"hardened-k8s:index:{component.__name__}"]
    args = args_of(component)
    docs = field_docs(args)
    assert set(resource["inputProperties"]) == {camel(f) for f in docs}, component
    assert sorted(resource["requiredInputs"]) == sorted(camel(f) for f in args.__required_keys__)  # type: ignore[attr-defined]
    for field, doc in docs.items():
        assert resource["inputProperties"][camel(field)]["description"] == doc, (
            f"{component.__name__}.{field}"
        )


def test_types_are_the_nested_args_with_their_docstrings(schema: dict[str, Any]) -> None:
    components = {f"{c.__name__}Args" for c in COMPONENTS} | {"ServiceSystemArgs"}
    nested = {name for name in hardened_k8s.__all__ if name.endswith("Args")} - components
    types = schema["types"]
    assert set(types) == {f"hardened-k8s:index:{n}" for n in nested | {"SslMode", "SecurityProfile"}}
    for name in nested:
        cls = getattr(hardened_k8s, name)
        assert is_typeddict(cls)
        declared = types[f"hardened-k8s:index:{name}"]
        assert {camel(f): doc for f, doc in field_docs(cls).items()} == {
            p: spec["description"] for p, spec in declared["properties"].items()
        }, name
        assert sorted(declared.get("required", [])) == sorted(camel(f) for f in cls.__required_keys__), name
    for enum_type in (hardened_k8s.SslMode, hardened_k8s.SecurityProfile):
        enum = types[f"hardened-k8s:index:{enum_type.__name__}"]
        assert enum["type"] == "string"
        assert [v["value"] for v in enum["enum"]] == [m.value for m in enum_type]


def test_inputs_and_outputs_are_typed(schema: dict[str, Any]) -> None:
    service = schema["resources"]["hardened-k8s:index:HardenedService"]
    inputs = service["inputProperties"]
    # Inputs take Outputs; a field that decides which objects exist is plain.
    assert inputs["namespace"]["type"] == inputs["image"]["type"] == "string"
    assert "plain" not in inputs["namespace"] and "plain" not in inputs["image"]
    assert (inputs["port"]["type"], inputs["port"]["plain"]) == ("integer", True)
    assert inputs["env"]["type"] == "object" and inputs["env"]["additionalProperties"]["type"] == "string"
    assert inputs["autoscaling"]["$ref"] == "#/types/hardened-k8s:index:AutoscalingArgs"
    assert inputs["ingressFrom"]["type"] == "array"
    assert inputs["ingressFrom"]["items"]["$ref"] == "#/types/hardened-k8s:index:PeerArgs"
    assert inputs["writablePaths"]["items"]["type"] == "string"
    assert inputs["topologySpread"]["type"] == "boolean"
    scaling = schema["types"]["hardened-k8s:index:AutoscalingArgs"]["properties"]
    assert (scaling["minReplicas"]["type"], scaling["minReplicas"].get("plain")) == ("integer", True)
    assert (scaling["cpuUtilization"]["type"], scaling["cpuUtilization"].get("plain")) == ("integer", None)
    database = schema["resources"]["hardened-k8s:index:PostgreSQL"]["inputProperties"]
    assert database["sslmode"]["$ref"] == "#/types/hardened-k8s:index:SslMode"
    assert set(service["properties"]) == {"serviceName", "dnsName", "image", "selector"}
    assert service["properties"]["selector"]["additionalProperties"]["type"] == "string"
    assert set(service["required"]) == set(service["properties"])
    image = schema["resources"]["hardened-k8s:index:ServiceImage"]
    assert set(image["properties"]) == {"ref"}
