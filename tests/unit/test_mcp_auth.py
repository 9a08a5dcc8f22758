"""The MCP server's bearer check picks up a rotated ``authToken`` from its mounted file."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

SERVICE = Path(__file__).resolve().parents[2] / "services" / "mcp-server"


def mcp_server() -> Any:
    if str(SERVICE) not in sys.path:
        sys.path.insert(0, str(SERVICE))
    return importlib.import_module("mcp_server.server")


async def hello(_: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The mounted token file, holding ``old-token``, named by ``AUTH_TOKEN_FILE``."""
    path = tmp_path / "AUTH_TOKEN"
    path.write_text("old-token\n")
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(path))
    return path


def _app(server: Any, **options: Any) -> Starlette:
    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(server.BearerAuth, token=server.auth_token(), reload=server.auth_token, **options)
    return app


def _statuses(app: Starlette, *tokens: str) -> list[int]:
    async def run() -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [
                (await c.get("/mcp", headers={"Authorization": f"Bearer {t}"})).status_code for t in tokens
            ]

    return asyncio.run(run())


def test_a_rotated_token_is_accepted_without_a_restart_and_the_old_one_refused_after_the_grace(
    token_file: Path,
) -> None:
    server = mcp_server()
    app = _app(server, grace_seconds=0.5)
    assert _statuses(app, "old-token", "wrong") == [200, 401]
    token_file.write_text("new-token\n")
    assert _statuses(app, "new-token", "old-token", "wrong", "new-token") == [200, 200, 401, 200]
    time.sleep(0.6)
    assert _statuses(app, "old-token", "new-token") == [401, 200]


def test_without_a_grace_the_old_token_is_refused_as_soon_as_the_file_changed(token_file: Path) -> None:
    server = mcp_server()
    app = _app(server, grace_seconds=0)
    token_file.write_text("new-token\n")
    assert _statuses(app, "new-token", "old-token", "new-token") == [200, 401, 200]


def test_a_second_rotation_within_the_grace_retires_the_first_token(token_file: Path) -> None:
    server = mcp_server()
    token_file.write_text("first\n")
    app = _app(server, grace_seconds=60)
    token_file.write_text("second\n")
    assert _statuses(app, "second", "first") == [200, 200]
    token_file.write_text("third\n")
    assert _statuses(app, "third", "second", "first") == [200, 200, 401]


def test_two_replicas_updated_at_different_times_serve_a_client_that_retries_once(tmp_path: Path) -> None:
    """The kubelet rewrites each replica's file at its own sync. Calls spread over a replica
    already updated and one not yet, with the client's new token first and the other one on a
    401 (docs/rotating-secrets.md), are all served; without the grace a retry that lands on
    the other replica is refused too."""
    server = mcp_server()

    def replicas(grace: float) -> tuple[list[Starlette], list[Path]]:
        apps, files = [], []
        for i in range(2):
            token_file = tmp_path / f"grace-{grace}-replica-{i}"
            token_file.write_text("old-token\n")
            app = Starlette(routes=[Route("/mcp", hello)])
            app.add_middleware(
                server.BearerAuth,
                token="old-token",
                reload=lambda f=token_file: f.read_text().strip(),
                recheck_seconds=0,
                grace_seconds=grace,
            )
            apps.append(app)
            files.append(token_file)
        return apps, files

    def served(apps: list[Starlette], files: list[Path]) -> list[bool]:
        """Each HTTP request, a retry included, goes to the next replica, as a load balancer
        sends them."""
        tokens = ["new-token", "old-token"]
        replica = iter(range(100))
        results = []
        files[0].write_text("new-token\n")  # one replica updated, the other not yet
        for call in range(8):
            if call == 4:
                files[1].write_text("new-token\n")  # now both
            status = _statuses(apps[next(replica) % 2], tokens[0])[0]
            if status == 401:
                tokens.reverse()
                status = _statuses(apps[next(replica) % 2], tokens[0])[0]
            results.append(status == 200)
        return results

    assert all(served(*replicas(grace=120))), "a request failed with a grace period"
    assert not all(served(*replicas(grace=0))), "without a grace the window is not visible"


def test_the_grace_comes_from_the_environment_and_bad_values_stop_the_server(monkeypatch: Any) -> None:
    server = mcp_server()
    monkeypatch.delenv("AUTH_TOKEN_GRACE_SECONDS", raising=False)
    assert server.token_grace_seconds() == server.TOKEN_GRACE_SECONDS == 120.0
    monkeypatch.setenv("AUTH_TOKEN_GRACE_SECONDS", "30")
    assert server.token_grace_seconds() == 30.0
    monkeypatch.setenv("AUTH_TOKEN_GRACE_SECONDS", "0")
    assert server.token_grace_seconds() == 0.0
    for bad in ("-1", "two minutes", "nan", "inf", "3601"):
        monkeypatch.setenv("AUTH_TOKEN_GRACE_SECONDS", bad)
        with pytest.raises(SystemExit) as refused:
            server.token_grace_seconds()
        assert f"AUTH_TOKEN_GRACE_SECONDS is {bad}: use a number of seconds from 0 to 3600" in str(
            refused.value
        )


def test_an_unreadable_token_file_keeps_the_last_token(token_file: Path) -> None:
    server = mcp_server()
    token_file.write_text("only-token")
    app = _app(server)
    token_file.unlink()
    assert _statuses(app, "wrong", "only-token") == [401, 200]


def test_the_old_token_is_refused_after_the_grace_even_if_nobody_shows_the_new_one(token_file: Path) -> None:
    """A client that keeps presenting the old token must not keep it alive: the file is read
    again ``recheck_seconds`` after the last read even when every token matched, and the old
    token's grace counts from that read."""
    server = mcp_server()
    app = _app(server, recheck_seconds=0.2, grace_seconds=0.3)
    assert _statuses(app, "old-token") == [200]
    token_file.write_text("new-token\n")
    time.sleep(0.25)
    assert _statuses(app, "old-token") == [200]  # read again now: the grace starts
    time.sleep(0.35)
    assert _statuses(app, "old-token", "new-token", "old-token") == [401, 200, 401]


def test_a_matching_token_is_not_read_again_within_the_recheck_interval(tmp_path: Path) -> None:
    """The default interval: a burst of requests reads the file once, not per request."""
    server = mcp_server()
    reads: list[int] = []

    def reload() -> str:
        reads.append(1)
        return "tok"

    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(server.BearerAuth, token="tok", reload=reload)

    async def burst() -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [
                (await c.get("/mcp", headers={"Authorization": "Bearer tok"})).status_code for _ in range(50)
            ]

    assert asyncio.run(burst()) == [200] * 50
    assert server.TOKEN_RECHECK_SECONDS == 1.0
    assert len(reads) <= 1, f"{len(reads)} reads of the token file for 50 matching requests"
