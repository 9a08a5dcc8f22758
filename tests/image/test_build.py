"""Real builds: both services built with the shared build spec, pushed and run.

Each test reads the images the session built (fixtures in ``conftest.py``); containers run
on the host network (the engine has no bridge) on free loopback ports.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import pytest

from hardened_k8s.config import DEFAULT_RUN_AS_USER

from ..waiting import wait_until
from .conftest import Built
from .engine import (
    ARBITRARY_UID,
    CA_IN_CONTEXT,
    NOT_ROOT_OWNED_OR_WRITABLE,
    Harness,
    free_port,
    ownership_problems,
    registry_digest,
    skopeo_digest,
)

pytestmark = pytest.mark.image

COMPILERS = ("gcc", "cc", "c++", "g++", "cpp", "make", "ld", "as")
FINAL_TO_BUILDER_MAX = 0.40
"""Target for final/builder size: the runtime stage keeps the base, the virtualenv and tini."""


def http_get(url: str, timeout: float = 3) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@dataclass
class Running:
    """Both services running: store-api without a database, mcp-server pointed at it."""

    store: Any
    store_port: int
    mcp: Any
    mcp_port: int


@pytest.fixture(scope="module")
def running(harness: Harness, built_images: dict[str, Built]) -> Iterator[Running]:
    store_port, mcp_port, no_db_port = free_port(), free_port(), free_port()
    store = harness.run(
        built_images["store-api"].image,
        environment={
            "HOST": "127.0.0.1",
            "PORT": str(store_port),
            # Nothing listens there: the API must still start, live, and report not-ready.
            "DATABASE_URL": f"postgresql://store@127.0.0.1:{no_db_port}/store_db",
            "DB_CONNECT_TIMEOUT": "1",
        },
    )
    mcp = harness.run(
        built_images["mcp-server"].image,
        environment={
            "HOST": "127.0.0.1",
            "PORT": str(mcp_port),
            "STORE_API_URL": f"http://127.0.0.1:{store_port}",
            # The server refuses to start without a bearer token.
            "AUTH_TOKEN": MCP_TOKEN,
        },
    )
    try:
        yield Running(store, store_port, mcp, mcp_port)
    finally:
        harness.remove(store)
        harness.remove(mcp)


def health_status(container: Any) -> str | None:
    container.reload()
    health = container.attrs["State"].get("Health") or {}
    status: str | None = health.get("Status")
    return status


# -- build and registry ------------------------------------------------------------------------
def test_push_digest_is_what_the_registry_serves(built: Built) -> None:
    assert set(built.pushed) == set(built.spec.refs), "every tag is pushed"
    digests = set(built.pushed.values())
    assert len(digests) == 1, f"all tags of one build name one manifest: {built.pushed}"
    for ref, pushed in built.pushed.items():
        assert pushed.startswith("sha256:")
        assert registry_digest(ref) == pushed, ref
        via_skopeo = skopeo_digest(ref)
        if via_skopeo is not None:
            assert via_skopeo == pushed, ref


def test_repo_digest_recorded_by_engine(harness: Harness, built: Built) -> None:
    repo_digests = harness.client.api.inspect_image(built.ref)["RepoDigests"]
    expected = f"{built.spec.repository}@{next(iter(built.pushed.values()))}"
    assert expected in repo_digests


def test_oci_labels_describe_the_build(harness: Harness, built: Built) -> None:
    labels = harness.client.api.inspect_image(built.image)["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == built.service.directory
    assert labels["org.opencontainers.image.version"] == built.spec.build_args["VERSION"]
    assert labels["org.opencontainers.image.revision"] == built.spec.build_args["REVISION"]
    assert labels["org.opencontainers.image.source"] == built.spec.build_args["SOURCE"]


def test_final_image_is_much_smaller_than_builder(harness: Harness, built: Built) -> None:
    # Same build, stopped at the builder stage and tagged apart; every step is cached.
    builder_spec = replace(built.spec, target="builder", tags=("stage-builder",))
    builder = harness.build(builder_spec)
    final_size = harness.image_size(built.result.image_id)
    builder_size = harness.image_size(builder.image_id)
    ratio = final_size / builder_size
    assert ratio <= FINAL_TO_BUILDER_MAX, (
        f"final {final_size / 1e6:.0f} MB / builder {builder_size / 1e6:.0f} MB = {ratio:.2f}"
    )


# -- what the final image contains -------------------------------------------------------------
def test_runs_as_the_deployment_uid(harness: Harness, built: Built) -> None:
    config = harness.client.api.inspect_image(built.image)["Config"]
    assert config["User"] == f"{DEFAULT_RUN_AS_USER}:{DEFAULT_RUN_AS_USER}"
    out = harness.output(built.image, ["id", "-u"]).strip()
    assert out == str(DEFAULT_RUN_AS_USER)
    assert harness.output(built.image, ["id", "-g"]).strip() == out


def test_code_and_virtualenv_are_root_owned_and_read_only(harness: Harness, built: Built) -> None:
    """As the runtime user, nothing under the virtualenv or the code is writable or its own."""
    found, checked = ownership_problems(harness.output(built.image, ["sh", "-c", NOT_ROOT_OWNED_OR_WRITABLE]))
    assert checked > 10, checked
    assert found == [], f"not root-owned or writable by the runtime user: {found}"


def test_serves_as_an_arbitrary_uid_in_group_0(harness: Harness, built: Built) -> None:
    """The image runs as the pod under restricted-v2 would: another UID, group 0, read-only root."""
    port = free_port()
    environment = {"HOST": "127.0.0.1", "PORT": str(port)}
    if built.service.directory == "store-api":
        environment |= {
            "DATABASE_URL": f"postgresql://store@127.0.0.1:{free_port()}/db",
            "DB_CONNECT_TIMEOUT": "1",
        }
    else:
        environment |= {"STORE_API_URL": f"http://127.0.0.1:{free_port()}", "AUTH_TOKEN": MCP_TOKEN}
    container = harness.run(
        built.image,
        user=f"{ARBITRARY_UID}:0",
        read_only=True,
        tmpfs={"/tmp": "size=64m"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        environment=environment,
    )
    try:

        def live() -> tuple[int, Any] | None:
            try:
                return http_get(f"http://127.0.0.1:{port}/health")
            except OSError:
                return None

        try:
            status = wait_until("/health as an arbitrary UID", live, 40)
        except AssertionError:
            raise AssertionError(container.logs().decode(errors="replace")[-2000:]) from None
        assert status[0] == 200, status
        code, ids = container.exec_run(["sh", "-c", "id -u; id -g"])
        assert code == 0 and ids.decode().split() == [ARBITRARY_UID, "0"], ids
    finally:
        harness.remove(container)


def test_no_compiler_or_dev_package(harness: Harness, built: Built) -> None:
    probe = "for t in " + " ".join(COMPILERS) + "; do command -v $t || true; done"
    found = harness.output(built.image, ["sh", "-c", probe]).split()
    assert found == [], f"build tools on PATH: {found}"
    packages = harness.output(built.image, ["dpkg-query", "-W", "-f", "${Package}\\n"]).split()
    # gcc-12-base (docs for libgcc, which is essential) is no compiler; gcc, gcc-12, cpp-12 are.
    build_tool = re.compile(r"^(gcc|g\+\+|cpp|clang|binutils|make|build-essential)\b")
    bad = [p for p in packages if p.endswith("-dev") or (build_tool.match(p) and not p.endswith("-base"))]
    assert bad == [], f"build packages installed: {bad}"


def test_healthcheck_is_configured(harness: Harness, built: Built) -> None:
    check = harness.client.api.inspect_image(built.image)["Config"].get("Healthcheck") or {}
    test = check.get("Test") or []
    assert test and test[0] in ("CMD", "CMD-SHELL"), check
    assert "/health" in " ".join(test), "the health check calls the server's /health"


def test_no_build_ca_pip_or_apt_cache_left(harness: Harness, built: Built) -> None:
    ca = harness.ca_bundle
    ca_size = ca.stat().st_size if ca else -1
    ca_sha = hashlib.sha256(ca.read_bytes()).hexdigest() if ca else ""
    leftovers: list[str] = []
    for layer, tar, info in harness.image_files(built.image):
        path = PurePosixPath("/", info.name)
        where = f"{path} (layer {layer[:12]})"
        if path.name in (CA_IN_CONTEXT, f".wh.{CA_IN_CONTEXT}"):
            leftovers.append(f"build CA {where}")
        if ".cache/pip" in str(path) or path.match("/root/.cache/*"):
            leftovers.append(f"pip cache {where}")
        if path.match("/var/cache/apt/*.bin") or path.match("/var/cache/apt/archives/*.deb"):
            leftovers.append(f"apt cache {where}")
        if (
            str(path).startswith("/var/lib/apt/lists/")
            and info.isfile()
            and path.name != "lock"
            and not path.name.startswith(".wh.")
        ):
            leftovers.append(f"apt list {where}")
        if info.isfile() and info.size == ca_size:
            f = tar.extractfile(info)
            if f is not None and hashlib.sha256(f.read()).hexdigest() == ca_sha:
                leftovers.append(f"copy of the build CA bundle {where}")
    assert leftovers == []
    history = " ".join(h["CreatedBy"] for h in harness.client.api.history(built.image))
    assert "build-ca" not in history and "PIP_CERT" not in history


# -- running containers ------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["store", "mcp"])
def test_tini_is_pid_1(running: Running, which: str) -> None:
    container = getattr(running, which)
    code, out = container.exec_run(["cat", "/proc/1/cmdline"])
    assert code == 0, out
    argv = out.decode().split("\0")
    assert PurePosixPath(argv[0]).name == "tini", argv
    assert "--" in argv and "python" in argv, argv


def test_store_api_lives_without_database(running: Running) -> None:
    base = f"http://127.0.0.1:{running.store_port}"

    def live() -> tuple[int, Any] | None:
        try:
            return http_get(base + "/health")
        except OSError:
            return None

    assert wait_until("store-api /health", live, 30) == (200, {"status": "ok"})
    status, body = http_get(base + "/ready", timeout=10)
    assert status == 503 and body["database"] == "unreachable"


@pytest.mark.parametrize("which", ["mcp", "store"])
def test_container_becomes_healthy(running: Running, which: str) -> None:
    container = getattr(running, which)
    status = wait_until(
        f"{which} health status",
        lambda: (s := health_status(container)) in ("healthy", "unhealthy") and s,
        60,
    )
    assert status == "healthy", container.logs().decode(errors="replace")[-2000:]


MCP_TOKEN = "image-tier-token"

MCP_CLIENT = """
import asyncio, json, sys
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url, token):
    headers = {"Authorization": "Bearer " + token}
    async with httpx2.AsyncClient(headers=headers) as http, Client(
        streamable_http_client(url, http_client=http)
    ) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        result = await client.call_tool("list_products", {})
        text = " ".join(getattr(c, "text", "") for c in result.content)
        print(json.dumps({"tools": tools, "is_error": result.is_error, "text": text}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_mcp_tools_reach_the_store_api(running: Running) -> None:
    """An MCP client (the SDK in the image) lists the tools and calls one through the API."""
    wait_until("mcp /health", lambda: _answers(running.mcp_port), 30)
    code, out = running.mcp.exec_run(
        ["python", "-c", MCP_CLIENT, f"http://127.0.0.1:{running.mcp_port}/mcp", MCP_TOKEN]
    )
    assert code == 0, out.decode(errors="replace")
    answer = json.loads(out.decode().strip().splitlines()[-1])
    assert answer["tools"] == ["adjust_stock", "create_product", "get_product", "list_products"]
    # The store API is up but has no database: the tool call crossed HTTP and got its 503.
    assert answer["is_error"] and "503" in answer["text"], answer


def _answers(port: int) -> bool:
    try:
        return http_get(f"http://127.0.0.1:{port}/health")[0] == 200
    except OSError:
        return False
