"""Deploying a stack onto the local cluster's real node: image references and TLS material.

Shared by the cluster tier and ``python -m tests.cluster up``.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from ..image.stack_images import DATABASE_IMAGE, Image
from .pulumi_cli import ProjectStack


def node_image_refs(project: ProjectStack, built: dict[str, Image]) -> dict[str, str]:
    """The stack's registry reference of each image the harness pushed, by digest: the node
    pulls ``quay.io/...@sha256:`` through containerd's mirror of quay.io to the local registry."""
    registry = project.config("registry") or "quay.io/ecosystem-appeng"
    names = {name: name for name in project.config("services") or {}}
    names[project.config("database")["name"]] = DATABASE_IMAGE
    refs = {}
    for name, image in names.items():
        digest = built[image].ref.rsplit("@", 1)[1]
        refs[name] = f"{registry}/{image}@{digest}"
    return refs


def tls_certificate(directory: Path, host_name: str) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate for ``host_name`` signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", "ca.key",
            "-out", "ca.crt", "-subj", "/CN=ingress-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
            "-subj", f"/CN={host_name}")  # fmt: skip
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{host_name}\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-out", "tls.crt", "-extfile", "san.ext")  # fmt: skip
    return directory / "tls.crt", directory / "tls.key", directory / "ca.crt"


def tls_secret(namespace: str, name: str, crt: Path, key: Path) -> dict[str, Any]:
    """The ``kubernetes.io/tls`` Secret an Ingress names, from a certificate and its key."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(crt.read_bytes()).decode(),
            "tls.key": base64.b64encode(key.read_bytes()).decode(),
        },
    }
