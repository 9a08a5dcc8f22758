"""Strict Kubernetes schema validation through kubernetes-validate."""

from __future__ import annotations

import kubernetes_validate
import pytest

from hardened_k8s.config import SUPPORTED_KUBERNETES_VERSIONS
from hardened_k8s.schema import supported_versions, validate_objects

from .stack import find, hardened_stack


def test_hardened_stack_is_schema_valid() -> None:
    assert validate_objects(hardened_stack(), "1.31") == []


def test_unknown_field_is_named() -> None:
    objs = hardened_stack()
    find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    errors = validate_objects(objs, "1.31")
    assert [(e.kind, e.name, e.path) for e in errors] == [
        ("Deployment", "store-api", "spec.template.spec.containers[0]")
    ]
    assert "'securityContex' was unexpected" in errors[0].message
    assert str(errors[0]).startswith("Deployment/store-api: spec.template.spec.containers[0]: ")


def test_wrong_type_is_named() -> None:
    objs = hardened_stack()
    find(objs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = "2"
    errors = validate_objects(objs, "1.31")
    assert [(e.kind, e.path) for e in errors] == [("HorizontalPodAutoscaler", "spec.minReplicas")]
    assert "is not of type 'integer'" in errors[0].message


def test_an_object_is_judged_by_its_content_each_time() -> None:
    # Validation results are remembered by the object's content: the same errors for the
    # same object, and an object changed after a check is checked again.
    deployment = find(hardened_stack(), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContex"] = {}
    first = validate_objects([deployment], "1.31")
    assert [e.path for e in first] == ["spec.template.spec.containers[0]"]
    assert validate_objects([deployment], "1.31") == first
    del container["securityContex"]
    assert validate_objects([deployment], "1.31") == []
    container["securityContex"] = {}
    assert validate_objects([deployment], "1.32") == first


def test_agrees_with_kubernetes_validate() -> None:
    objs = hardened_stack()
    find(objs, "Service")["spec"]["bogus"] = 1
    # One object of each kind (the first Service is the bogus one): kubernetes-validate reads
    # its 1 MB definitions file again on every call.
    first_of_kind = {(o["apiVersion"], o["kind"]): o for o in reversed(objs)}
    for obj in first_of_kind.values():
        ours = validate_objects([obj], "1.31")
        try:
            kubernetes_validate.validate(obj, "1.31", strict=True)
            theirs = True
        except kubernetes_validate.ValidationError:
            theirs = False
        assert (ours == []) == theirs, obj["kind"]


def test_removed_api_version_is_an_error() -> None:
    hpa = find(hardened_stack(), "HorizontalPodAutoscaler")
    hpa["apiVersion"] = "autoscaling/v2beta2"
    errors = validate_objects([hpa], "1.31")
    assert [e.path for e in errors] == ["apiVersion"]


@pytest.mark.parametrize("version", ["1.31", "v1.31", "1.31.4"])
def test_version_spellings(version: str) -> None:
    assert validate_objects(hardened_stack(), version) == []


def test_unsupported_version_names_range() -> None:
    with pytest.raises(ValueError, match=r"supported: 1\.\d+ to 1\.\d+"):
        validate_objects([], "1.99")
    assert "1.31" in supported_versions()


def test_the_config_accepts_exactly_the_versions_the_schemas_cover() -> None:
    """``kubernetesVersion`` is checked without kubernetes-validate (a deploy-only install has
    none); the list it is checked against must stay the render extra's."""
    assert list(SUPPORTED_KUBERNETES_VERSIONS) == supported_versions()
