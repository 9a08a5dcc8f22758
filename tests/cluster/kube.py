"""Reading objects back from the local cluster's API server (discovery-based REST paths)."""

from __future__ import annotations

import json
import urllib.error
from typing import Any

from .local import LocalCluster


class Kube:
    """GET/LIST any object by ``apiVersion``/``kind``, resolving plurals through discovery."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self._plurals: dict[tuple[str, str], tuple[str, bool]] = {}

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._plurals:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for resource in self.cluster.api("GET", base)["resources"]:
                if "/" not in resource["name"]:
                    self._plurals[(api_version, resource["kind"])] = (
                        resource["name"],
                        resource["namespaced"],
                    )
        return self._plurals[key]

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        plural, namespaced = self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        path = f"{base}/namespaces/{namespace}/{plural}" if namespaced and namespace else f"{base}/{plural}"
        return f"{path}/{name}" if name else path

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The live object, or ``None`` when the API server has no such object."""
        try:
            return self.cluster.api("GET", self.path(api_version, kind, namespace, name))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, **params: str
    ) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        path = self.path(api_version, kind, namespace) + (f"?{query}" if query else "")
        items: list[dict[str, Any]] = self.cluster.api("GET", path)["items"]
        return items


def subset(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected``, ignoring what only ``actual`` has.

    The API server adds defaults (``protocol: TCP``, ``policyTypes``...) and drops empty
    lists and maps; every other field the manifest declares must be there with the same
    value. Lists compare item by item.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a map, got {json.dumps(actual)}"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in actual and value in ({}, [], None):
                continue  # the API server omits empty lists and maps (omitempty)
            if key not in actual:
                problems.append(f"{where}.{key}: missing (expected {json.dumps(value)})")
            else:
                problems += subset(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in subset(e, a, f"{where}[{i}]")
        ]
    if expected != actual and str(expected) != str(actual):
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []
