"""The MCP server's store API client: one pooled client, keep-alive connections, plain-ASGI auth.

Runs the real ``mcp_server`` code in this process against a small HTTP/1.1 server on a
loopback port of the test's own event loop (no other process), which counts the TCP
connections it accepts: the pooled client must reuse one connection for sequential calls.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

MCP_SERVER_DIR = Path(__file__).resolve().parents[2] / "services" / "mcp-server"


@pytest.fixture(scope="module")
def server_module() -> ModuleType:
    if str(MCP_SERVER_DIR) not in sys.path:
        sys.path.insert(0, str(MCP_SERVER_DIR))
    return importlib.import_module("mcp_server.server")


@dataclass
class FakeStoreAPI:
    """A keep-alive HTTP/1.1 server answering every request with a JSON body."""

    port: int = 0
    connections: int = 0
    requests: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                self.requests.append(lines[0])
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if length:
                    await reader.readexactly(length)
                body = json.dumps({"id": len(self.requests), "path": lines[0].split()[1]}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def fake_store() -> AsyncIterator[FakeStoreAPI]:
    fake = FakeStoreAPI()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro())  # type: ignore[arg-type]


def test_sequential_calls_share_one_client_and_one_connection(server_module: ModuleType) -> None:
    async def scenario() -> tuple[FakeStoreAPI, Any, list[Any]]:
        async with fake_store() as fake:
            store = server_module.StoreClient(f"http://127.0.0.1:{fake.port}")
            async with store:
                results = [await store.request("GET", f"/products/{i}") for i in range(20)]
            return fake, store, results

    fake, store, results = run(scenario)
    assert [r["path"] for r in results] == [f"/products/{i}" for i in range(20)]
    assert store.clients_opened == 1, f"{store.clients_opened} HTTP clients built for 20 calls"
    assert fake.connections == 1, f"20 sequential calls opened {fake.connections} TCP connections"


def test_concurrent_calls_are_pooled(server_module: ModuleType) -> None:
    async def scenario() -> tuple[FakeStoreAPI, Any]:
        async with fake_store() as fake:
            store = server_module.StoreClient(f"http://127.0.0.1:{fake.port}", max_connections=4)
            async with store:
                for _ in range(3):  # three waves: connections from the first wave are reused
                    await asyncio.gather(*(store.request("GET", "/products") for _ in range(8)))
            return fake, store

    fake, store = run(scenario)
    assert len(fake.requests) == 24
    assert store.clients_opened == 1
    assert fake.connections <= 4, f"max_connections=4 but {fake.connections} connections were opened"


def test_app_lifespan_opens_the_client_once_and_closes_it(
    server_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ASGI app's lifespan owns the store client: opened at startup, closed at shutdown."""
    monkeypatch.setenv("AUTH_TOKEN", "t0ken")

    async def scenario() -> tuple[FakeStoreAPI, Any, bool, bool]:
        async with fake_store() as fake:
            monkeypatch.setenv("STORE_API_URL", f"http://127.0.0.1:{fake.port}")
            app = server_module.create_app()
            store = app.state.store
            async with app.router.lifespan_context(app):
                opened_at_start = store.clients_opened == 1
                assert await store.healthy()
                await store.request("GET", "/products")
            closed = store._client is None
            return fake, store, opened_at_start, closed

    fake, store, opened_at_start, closed = run(scenario)
    assert opened_at_start, "the lifespan did not open the store client at startup"
    assert closed, "the lifespan left the store client open after shutdown"
    assert store.clients_opened == 1
    assert fake.connections == 1
    assert fake.requests == ["GET /health HTTP/1.1", "GET /products HTTP/1.1"]


def test_unreachable_store_is_a_tool_error(server_module: ModuleType) -> None:
    async def scenario() -> str:
        # Port 9 (discard) on loopback: nothing listens, the connect is refused at once.
        async with server_module.StoreClient("http://127.0.0.1:9", connect_timeout=0.5) as store:
            try:
                await store.request("GET", "/products")
            except server_module.StoreAPIError as exc:
                return str(exc)
        return ""

    assert run(scenario).startswith("store API unreachable")


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/mcp", [], 401),
        ("/mcp", [(b"authorization", b"Bearer wrong")], 401),
        ("/mcp", [(b"authorization", b"Bearer t0ken")], 200),
        ("/health", [], 200),
    ],
)
def test_bearer_auth_middleware(
    server_module: ModuleType, path: str, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        middleware = server_module.BearerAuth(inner, token="t0ken")
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
        await middleware(scope, receive, send)

    run(scenario)
    assert sent[0]["status"] == status, f"{path} with {headers!r}: {sent[0]}"
    if status == 401:
        assert (b"www-authenticate", b"Bearer") in sent[0]["headers"]


def test_store_api_requests_are_not_logged_one_by_one(
    server_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    main_module = importlib.import_module("mcp_server.__main__")
    httpx_logger = logging.getLogger("httpx2")
    monkeypatch.setattr(httpx_logger, "level", httpx_logger.level)  # restored after the test
    # basicConfig only configures a root logger without handlers; both restored after the test.
    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    main_module.configure_logging()
    assert not httpx_logger.isEnabledFor(logging.INFO)
    assert httpx_logger.isEnabledFor(logging.WARNING)
    assert logging.getLogger("mcp_server").isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("", False), ("0", False), ("off", False), ("1", True), ("True", True), (" yes ", True)],
)
def test_access_log_switch(server_module: ModuleType, value: str, enabled: bool) -> None:
    main_module = importlib.import_module("mcp_server.__main__")
    assert main_module.access_log_enabled(value) is enabled


def test_access_log_switch_refuses_other_values(server_module: ModuleType) -> None:
    main_module = importlib.import_module("mcp_server.__main__")
    with pytest.raises(SystemExit, match="ACCESS_LOG='verbose': use 1/true/yes/on or 0/false/no/off"):
        main_module.access_log_enabled("verbose")
