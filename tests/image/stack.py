"""The stack from its real images on the image tier's engine: PostgreSQL, API replicas, MCP server.

Every container runs on the host network (the engine has no bridge), each on a free loopback
port: one PostgreSQL container, ``replicas`` store API containers on it, and optionally the
MCP server calling the first replica. Shared by the load tests (``test_load.py``) and the
load benchmark (``bench/image_stack.py``), so both measure the same thing.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Harness, free_port
from .stack_images import DATABASE_IMAGE, stack_builds

DB_USER = "store"
DB_NAME = "store_db"


def build_stack(harness: Harness, revision: str, services_dir: Path | None = None) -> dict[str, str]:
    """Build the three images (not pushed: the engine runs them by id); image name -> id."""
    return {name: harness.build(spec).image_id for name, spec in stack_builds(revision, services_dir).items()}


@dataclass
class Stack:
    """The running containers and where they listen (all on 127.0.0.1)."""

    db_port: int
    api_ports: list[int]
    mcp_port: int | None
    token: str
    containers: dict[str, Any] = field(default_factory=dict)

    @property
    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.api_ports]

    @property
    def mcp_url(self) -> str:
        if self.mcp_port is None:
            raise RuntimeError("this stack runs no MCP server")
        return f"http://127.0.0.1:{self.mcp_port}/mcp"


def http_status(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            json.load(resp)
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def _wait_ready(url: str, timeout: float, container: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(url) == 200:
            return
        container.reload()
        if container.status == "exited":
            log = container.logs().decode(errors="replace")[-3000:]
            raise AssertionError(f"{url}: container exited:\n{log}")
        time.sleep(0.3)
    raise AssertionError(
        f"{url} not ready within {timeout:.0f}s:\n{container.logs().decode(errors='replace')[-3000:]}"
    )


@contextmanager
def run_stack(
    harness: Harness,
    images: dict[str, str],
    *,
    replicas: int = 3,
    mcp: bool = True,
    api_env: dict[str, str] | None = None,
    ready_timeout: float = 120,
) -> Iterator[Stack]:
    """Start PostgreSQL, ``replicas`` store APIs and (``mcp``) the MCP server; wait until
    every one answers ``/ready``; remove them all on exit. ``api_env`` adds to the APIs'
    environment (e.g. ``DB_POOL_MAX_SIZE``)."""
    password = secrets.token_urlsafe(24)
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="hk8s-stack-") as tmp:
        secret_dir = Path(tmp)
        secret_dir.chmod(0o755)
        pw_file = secret_dir / "password"
        pw_file.write_text(password)
        pw_file.chmod(0o644)  # read by PostgreSQL's UID inside the container
        api_ports = [free_port() for _ in range(replicas)]
        stack = Stack(free_port(), api_ports, free_port() if mcp else None, token)
        try:
            stack.containers["db"] = harness.run(
                images[DATABASE_IMAGE],
                ["-c", "listen_addresses=127.0.0.1"],
                environment={
                    # PGPORT, not -p: the entrypoint's own psql reaches the server by it.
                    "PGPORT": str(stack.db_port),
                    "POSTGRES_USER": DB_USER,
                    "POSTGRES_DB": DB_NAME,
                    "POSTGRES_PASSWORD_FILE": "/run/secrets/db/password",
                },
                volumes={str(secret_dir): {"bind": "/run/secrets/db", "mode": "ro"}},
                tmpfs={"/var/lib/postgresql/data": "uid=10002,mode=0700", "/var/run/postgresql": "uid=10002"},
            )
            for i, port in enumerate(stack.api_ports):
                stack.containers[f"api-{i}"] = harness.run(
                    images["store-inventory"],
                    environment={
                        "HOST": "127.0.0.1",
                        "PORT": str(port),
                        "DATABASE_URL": f"postgresql://{DB_USER}@127.0.0.1:{stack.db_port}/{DB_NAME}",
                        "PGPASSWORD": password,
                        "DB_CONNECT_TIMEOUT": "2",
                        **(api_env or {}),
                    },
                )
            if stack.mcp_port is not None:
                stack.containers["mcp"] = harness.run(
                    images["mcp-store-inventory"],
                    environment={
                        "HOST": "127.0.0.1",
                        "PORT": str(stack.mcp_port),
                        "STORE_API_URL": stack.api_urls[0],
                        "AUTH_TOKEN": token,
                    },
                )
            for i, url in enumerate(stack.api_urls):
                _wait_ready(f"{url}/ready", ready_timeout, stack.containers[f"api-{i}"])
            if stack.mcp_port is not None:
                mcp_ready = f"http://127.0.0.1:{stack.mcp_port}/ready"
                _wait_ready(mcp_ready, ready_timeout, stack.containers["mcp"])
            yield stack
        finally:
            for container in reversed(stack.containers.values()):
                harness.remove(container)
