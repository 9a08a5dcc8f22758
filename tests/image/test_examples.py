"""Real builds of the example projects' images, run the way their rendered pods run them.

Each example's program runs on the mock engine (``examples.py``) to learn what it builds and
how its Deployment runs the image; the session's engine builds every image and starts it as
the pod would: the pod's UID, read-only root with memory filesystems at the writable paths,
every capability dropped, no privilege escalation, on a free loopback port. Peers an image
calls (``<PEER>_URL``) point at the example's other running containers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from hardened_k8s_rules.controls import MIN_RUN_AS_ID

from .engine import (
    ARBITRARY_UID,
    NOT_ROOT_OWNED_OR_WRITABLE,
    BuildResult,
    Harness,
    free_port,
    ownership_problems,
)
from .examples import ExampleImage, building_examples, example_images

pytestmark = pytest.mark.image

EXAMPLES = building_examples()
BUILD_TOOLS = ("gcc", "cc", "c++", "make", "ld", "pip", "pip3", "npm", "npx", "tsc")
SECOND = 1_000_000_000
"""Docker's health check durations are nanoseconds."""


@dataclass
class Running:
    """One example image built and started like its pod."""

    image: ExampleImage
    built: BuildResult
    container: Any
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def exec(self, argv: list[str]) -> str:
        code, out = self.container.exec_run(argv)
        text: str = out.decode(errors="replace")
        assert code == 0, f"{self.image.name}: {argv} exited {code}: {text}"
        return text


class Examples:
    """Builds and starts each example's images once, on first use."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.started: dict[str, dict[str, Running]] = {}

    def __call__(self, example: str) -> dict[str, Running]:
        if example not in self.started:
            self.started[example] = self._start(example_images(example))
        return self.started[example]

    def _start(self, images: list[ExampleImage]) -> dict[str, Running]:
        built = {image.name: self.harness.build(image.spec) for image in images}
        ports = {image.name: free_port() for image in images}
        # The in-cluster URL of each image's Service, as its callers get it, to its loopback port.
        peers = {f"http://{i.name}:{i.port}": f"http://127.0.0.1:{ports[i.name]}" for i in images}
        running = {}
        for image in images:
            result = built[image.name]
            check = self.harness.client.api.inspect_image(result.image_id)["Config"]["Healthcheck"]
            env = {
                **image.env,
                **{key: peers[url] for key, url in image.peer_urls.items() if url in peers},
                "PORT": str(ports[image.name]),
                "HOST": "127.0.0.1",  # the engine has no bridge: loopback of the host only
            }
            container = self.harness.run(
                result.image_id,
                environment=env,
                user=f"{image.run_as_user}:{image.run_as_user}",
                read_only=True,
                tmpfs={path: "size=64m" for path in image.writable_paths},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                # The image's own check command, asked every second instead of every 30 s.
                healthcheck={"test": check["Test"], "interval": SECOND, "timeout": 5 * SECOND, "retries": 3},
            )
            running[image.name] = Running(image, result, container, ports[image.name])
        return running


@pytest.fixture(scope="session")
def examples(harness: Harness) -> Iterator[Examples]:
    started = Examples(harness)
    yield started
    for running in started.started.values():
        for r in running.values():
            harness.remove(r.container)


def get(url: str, timeout: float = 3) -> tuple[int, Any]:
    return request("GET", url, timeout=timeout)


def request(method: str, url: str, body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def wait_ready(r: Running, timeout: float = 60) -> None:
    """Until the readiness path answers 200; the failure shows the container's log."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = get(r.url(r.image.probe_path("readinessProbe")))
            if last[0] == 200:
                return
        except OSError as err:
            last = err
        time.sleep(0.5)
    logs = r.container.logs().decode(errors="replace")[-3000:]
    raise AssertionError(f"{r.image.name}: not ready within {timeout:.0f}s (last: {last!r})\n{logs}")


def ready(examples: Examples, example: str) -> dict[str, Running]:
    running = examples(example)
    for r in running.values():
        wait_ready(r)
    return running


# -- every example image -------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES)
def test_runs_as_the_pods_non_root_uid(harness: Harness, examples: Examples, example: str) -> None:
    for r in examples(example).values():
        uid = r.image.run_as_user
        assert uid >= MIN_RUN_AS_ID, r.image.name
        config = harness.client.api.inspect_image(r.built.image_id)["Config"]
        assert config["User"] == f"{uid}:{uid}", f"{r.image.name}: image USER is not the pod's runAsUser"
        # Without the pod's override, the image itself runs as that non-root user.
        assert harness.output(r.built.image_id, ["id", "-u"]).strip() == str(uid), r.image.name


@pytest.mark.parametrize("example", EXAMPLES)
def test_tini_is_the_entrypoint_and_pid_1(harness: Harness, examples: Examples, example: str) -> None:
    for r in ready(examples, example).values():
        entrypoint = harness.client.api.inspect_image(r.built.image_id)["Config"]["Entrypoint"]
        assert entrypoint and PurePosixPath(entrypoint[0]).name == "tini", (r.image.name, entrypoint)
        argv = r.exec(["cat", "/proc/1/cmdline"]).split("\0")
        assert PurePosixPath(argv[0]).name == "tini" and "--" in argv, (r.image.name, argv)


@pytest.mark.parametrize("example", EXAMPLES)
def test_answers_its_probes_as_its_pod_runs_it(examples: Examples, example: str) -> None:
    """Read-only root, no capabilities, the pod's UID: readiness and liveness still answer 200."""
    for r in ready(examples, example).values():
        host = r.container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"], r.image.name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            status, body = get(r.url(r.image.probe_path(probe)))
            assert status == 200, (r.image.name, probe, body)
        code, out = r.container.exec_run(["sh", "-c", "touch /app/written || touch /written"])
        assert code != 0 and b"Read-only file system" in out, (r.image.name, out)


@pytest.mark.parametrize("example", EXAMPLES)
def test_image_healthcheck_turns_healthy(examples: Examples, example: str) -> None:
    for r in ready(examples, example).values():
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            r.container.reload()
            status = (r.container.attrs["State"].get("Health") or {}).get("Status")
            if status in ("healthy", "unhealthy"):
                break
            time.sleep(0.5)
        assert status == "healthy", (r.image.name, r.container.attrs["State"].get("Health"))


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_build_tool_in_the_runtime_image(examples: Examples, example: str) -> None:
    probe = "for t in " + " ".join(BUILD_TOOLS) + "; do command -v $t || true; done"
    for r in examples(example).values():
        assert r.exec(["sh", "-c", probe]).split() == [], r.image.name


@pytest.mark.parametrize("example", EXAMPLES)
def test_code_is_root_owned_and_read_only_to_the_runtime_user(examples: Examples, example: str) -> None:
    for r in examples(example).values():
        found, checked = ownership_problems(r.exec(["sh", "-c", NOT_ROOT_OWNED_OR_WRITABLE]))
        assert checked > 10, (r.image.name, checked)
        assert found == [], f"{r.image.name}: not root-owned or writable by the runtime user: {found}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_serves_as_an_arbitrary_uid_in_group_0(harness: Harness, examples: Examples, example: str) -> None:
    """Another UID, group 0, read-only root: the image does not depend on its own user."""
    for r in examples(example).values():
        port = free_port()
        container = harness.run(
            r.built.image_id,
            environment={**r.image.env, "PORT": str(port), "HOST": "127.0.0.1"},
            user=f"{ARBITRARY_UID}:0",
            read_only=True,
            tmpfs={path: "size=64m" for path in r.image.writable_paths},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
        )
        try:
            other = Running(r.image, r.built, container, port)
            deadline = time.monotonic() + 40
            status: object = None
            while time.monotonic() < deadline and status != 200:
                try:
                    status = get(other.url(r.image.probe_path("livenessProbe")))[0]
                except OSError as err:
                    status = err
                time.sleep(0.5)
            assert status == 200, (r.image.name, status, container.logs().decode(errors="replace")[-2000:])
            assert other.exec(["sh", "-c", "id -u; id -g"]).split() == [ARBITRARY_UID, "0"]
        finally:
            harness.remove(container)


# -- what each example is about ------------------------------------------------------------------
MCP_CLIENT = """
import asyncio, json, sys
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url):
    async with Client(streamable_http_client(url)) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        result = await client.call_tool("at_risk_accounts", {"threshold": 60})
        print(json.dumps({"tools": tools, "is_error": result.is_error,
                          "at_risk": [json.loads(c.text)["id"] for c in result.content]}))

asyncio.run(main(sys.argv[1]))
"""


def test_customer_success_mcp_answers_tool_calls(examples: Examples) -> None:
    """An MCP client (the SDK in the image) lists the tools and calls one over streamable HTTP."""
    (r,) = ready(examples, "customer-success-mcp").values()
    answer = json.loads(r.exec(["python", "-c", MCP_CLIENT, r.url("/mcp")]).strip().splitlines()[-1])
    assert answer["tools"] == ["account_health", "at_risk_accounts", "list_accounts"], answer
    assert not answer["is_error"] and answer["at_risk"] == ["umbrella", "globex"], answer


WHEEL_PROBE = """
import importlib.metadata as md, importlib.util, json, pathlib, sys, textstats
dist = md.distribution("textstats")
print(json.dumps({
    "version": dist.version,
    "installer": (dist.read_text("INSTALLER") or "").strip(),
    "wheel": (dist.read_text("WHEEL") or "").startswith("Wheel-Version"),
    "module": textstats.__file__,
    "prefix": sys.prefix,
    "pip": importlib.util.find_spec("pip") is not None,
}))
"""


def test_wheel_build_runtime_holds_installed_wheels_only(examples: Examples) -> None:
    (r,) = ready(examples, "wheel-build").values()
    info = json.loads(r.exec(["python", "-c", WHEEL_PROBE]).strip())
    assert info["version"] == "0.1.0" and info["installer"] == "pip" and info["wheel"], info
    assert info["prefix"] == "/opt/venv" and "/site-packages/textstats/" in info["module"], info
    assert not info["pip"], "pip left in the runtime virtualenv"
    leftovers = r.exec(["sh", "-c", "ls -d /tmp/wheels /wheels /build /app 2>/dev/null || true"]).split()
    assert leftovers == [], f"build material in the runtime image: {leftovers}"
    status, body = request("POST", r.url("/stats"), "the cat and the hat")
    assert status == 200 and body["words"] == 5 and body["top_words"][0] == ["the", 2], body


def test_publishing_api_drafts_and_publishes(examples: Examples) -> None:
    (r,) = ready(examples, "publishing-api").values()
    status, created = request("POST", r.url("/articles"), {"title": "Release notes", "body": "..."})
    assert status == 201 and created["status"] == "draft", created
    status, published = request("POST", r.url(f"/articles/{created['id']}/publish"))
    assert status == 200 and published["status"] == "published" and published["published_at"], published
    status, listed = get(r.url("/articles?status=published"))
    assert status == 200 and [a["id"] for a in listed] == [created["id"]], listed


def test_node_api_reaches_the_python_service(examples: Examples) -> None:
    """pair-api finds intelligence at the INTELLIGENCE_URL its Deployment sets, and forwards to it."""
    running = ready(examples, "node-python-pair")
    assert set(running) == {"pair-api", "intelligence"}
    api = running["pair-api"]
    assert api.image.peer_urls == {"INTELLIGENCE_URL": "http://intelligence:8000"}
    status, body = request("POST", api.url("/api/analyze"), {"text": "Great docs, easy setup, not slow."})
    assert status == 200, body
    assert body["analysis"]["label"] == "positive" and "great" in body["analysis"]["keywords"], body


def test_node_runtime_has_production_dependencies_only(examples: Examples) -> None:
    """The runtime's node_modules hold exactly the lock file's production packages."""
    api = examples("node-python-pair")["pair-api"]
    lock = json.loads((Path(api.image.spec.context) / "package-lock.json").read_text())
    packages = {path: bool(meta.get("dev")) for path, meta in lock["packages"].items() if path}
    script = "; ".join(f"test -f /app/{path}/package.json && echo {path}" for path in packages) + "; true"
    present = set(api.exec(["sh", "-c", script]).split())
    assert present == {path for path, dev in packages.items() if not dev}, (
        f"missing: {sorted(p for p, dev in packages.items() if not dev and p not in present)}, "
        f"dev packages shipped: {sorted(p for p, dev in packages.items() if dev and p in present)}"
    )
    assert "node_modules/express" in present
    assert api.exec(["ls", "/app"]).split() == ["dist", "node_modules", "package.json"]
