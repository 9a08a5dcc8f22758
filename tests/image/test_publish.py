"""Build once, push once, against the real engine and registry: ``scripts/images.py publish``.

A ``sha-<revision>`` tag, once pushed, keeps its digest: publishing the same revision again
(a re-run, or a second stack) builds and pushes nothing, even when the build would now give
other bytes. A new revision moves only the version tag; every older ``sha-`` image stays
pullable by tag and by digest.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from hardened_k8s.build import BuildSpec, build_spec

from ..tiers import unavailable
from .engine import REGISTRY, Harness

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]


def _images_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("images_script", ROOT / "scripts" / "images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


images = _images_script()
CI = images.CiRun("https://github.com", "example/hardened-k8s", "1", "refs/heads/main")
Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[bytes]"]


@pytest.fixture(scope="module")
def run(harness: Harness) -> Iterator[Run]:
    """Run the script's commands against the tier's engine (``docker`` CLI) and registry."""
    if shutil.which("docker") is None or shutil.which("skopeo") is None:
        unavailable("image", "the docker CLI and skopeo are needed (scripts/ci-image-deps.sh)")
    host = os.environ.get("DOCKER_HOST") or f"unix://{harness.workdir / 'engine' / 'docker.sock'}"
    env = {**os.environ, "DOCKER_HOST": host}

    def call(argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(list(argv), capture_output=True, check=False, timeout=600, env=env)

    yield call


def spec_for(context: Path, name: str, revision: str) -> BuildSpec:
    return build_spec(name, context=context, registry=REGISTRY, version="1.0.0", revision=revision)


def write_context(context: Path, payload: str) -> None:
    context.mkdir(parents=True, exist_ok=True)
    (context / "payload").write_text(payload)
    (context / "Containerfile").write_text(
        "FROM scratch AS runtime\nARG REVISION\nLABEL org.opencontainers.image.revision=$REVISION\n"
        "COPY payload /payload\n"
    )


def test_a_pushed_sha_tag_never_moves(tmp_path: Path, run: Run) -> None:
    name = f"publish-{uuid.uuid4().hex[:8]}"  # a fresh repository: nothing pushed before
    context = tmp_path / "ctx"
    first_rev, second_rev = "1" * 40, "2" * 40

    write_context(context, "first build")
    first = images.publish(spec_for(context, name, first_rev), ci=CI, run=run, tls_verify=False)
    assert first.reused is False
    digest = first.ref.split("@", 1)[1]

    # Same revision, other bytes (a rebuild of the same commit is not bit-for-bit identical).
    write_context(context, "rebuilt")
    again = images.publish(spec_for(context, name, first_rev), ci=CI, run=run, tls_verify=False)
    assert again.reused is True and again.ref == first.ref, again
    served = images.registry_digest(f"{REGISTRY}/{name}:sha-{first_rev}", run=run, tls_verify=False)
    assert served == digest, "the sha tag moved to another digest"

    # A new revision: the version tag follows it, the old sha image stays pullable.
    second = images.publish(spec_for(context, name, second_rev), ci=CI, run=run, tls_verify=False)
    assert second.reused is False and second.ref != first.ref
    new_digest = second.ref.split("@", 1)[1]
    assert images.registry_digest(f"{REGISTRY}/{name}:1.0.0", run=run, tls_verify=False) == new_digest
    assert images.registry_digest(f"{REGISTRY}/{name}:sha-{first_rev}", run=run, tls_verify=False) == digest
    assert images.registry_digest(f"{REGISTRY}/{name}@{digest}", run=run, tls_verify=False) == digest
