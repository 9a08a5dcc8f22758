"""The MCP server's bearer check picks up a rotated ``authToken`` from its mounted file."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
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


def test_a_rotated_token_is_accepted_without_a_restart_and_the_old_one_refused(
    tmp_path: Path, monkeypatch: Any
) -> None:
    server = mcp_server()
    token_file = tmp_path / "AUTH_TOKEN"
    token_file.write_text("old-token\n")
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(token_file))
    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(server.BearerAuth, token=server.auth_token(), reload=server.auth_token)

    async def statuses(*tokens: str) -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [
                (await c.get("/mcp", headers={"Authorization": f"Bearer {t}"})).status_code for t in tokens
            ]

    assert asyncio.run(statuses("old-token", "wrong")) == [200, 401]
    token_file.write_text("new-token\n")
    assert asyncio.run(statuses("new-token", "old-token", "new-token")) == [200, 401, 200]


def test_an_unreadable_token_file_keeps_the_last_token(tmp_path: Path, monkeypatch: Any) -> None:
    server = mcp_server()
    token_file = tmp_path / "AUTH_TOKEN"
    token_file.write_text("only-token")
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(token_file))
    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(server.BearerAuth, token=server.auth_token(), reload=server.auth_token)
    token_file.unlink()

    async def status(token: str) -> int:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return (await c.get("/mcp", headers={"Authorization": f"Bearer {token}"})).status_code

    assert asyncio.run(status("wrong")) == 401
    assert asyncio.run(status("only-token")) == 200


def test_the_old_token_is_refused_once_the_file_changed_even_if_nobody_shows_the_new_one(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A client that keeps presenting the old token must not keep it alive: the file is read
    again ``recheck_seconds`` after the last read even when every token matched."""
    server = mcp_server()
    token_file = tmp_path / "AUTH_TOKEN"
    token_file.write_text("old-token\n")
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(token_file))
    app = Starlette(routes=[Route("/mcp", hello)])
    app.add_middleware(
        server.BearerAuth, token=server.auth_token(), reload=server.auth_token, recheck_seconds=0.2
    )

    async def statuses(*tokens: str) -> list[int]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [
                (await c.get("/mcp", headers={"Authorization": f"Bearer {t}"})).status_code for t in tokens
            ]

    assert asyncio.run(statuses("old-token")) == [200]
    token_file.write_text("new-token\n")
    time.sleep(0.25)
    assert asyncio.run(statuses("old-token", "new-token", "old-token")) == [401, 200, 401]


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
