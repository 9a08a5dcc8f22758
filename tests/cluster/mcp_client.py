"""The real ``mcp`` SDK client, through the Ingress controller over HTTPS.

Traefik listens on 127.0.0.1; the client dials that address and presents the Ingress host
as SNI and ``Host``, and verifies the certificate against the test's own CA for that name,
as a client resolving the public name to the controller would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2


@dataclass(frozen=True)
class Endpoint:
    """The MCP server as a client outside the cluster reaches it."""

    https_port: int
    host: str
    ca: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/mcp"

    def client(
        self, token: str | None, on_response: Callable[[httpx2.Response], Awaitable[None]] | None = None
    ) -> httpx2.AsyncClient:
        async def sni(request: httpx2.Request) -> None:
            request.extensions["sni_hostname"] = self.host

        headers = {"Host": self.host}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.AsyncClient(
            headers=headers,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            timeout=httpx2.Timeout(30, read=120),
            event_hooks={"request": [sni], "response": [on_response] if on_response else []},
        )


def tool_value(result: Any) -> Any:
    """A tool result's value: the structured content, or the JSON text of its content."""
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured.get("result", structured) if isinstance(structured, dict) else structured
    texts = [getattr(c, "text", "") for c in result.content]
    if len(texts) == 1:
        return json.loads(texts[0])
    return [json.loads(t) for t in texts]


async def _session(
    endpoint: Endpoint, token: str | None, calls: Sequence[tuple[str, dict[str, Any]]]
) -> tuple[list[Any], list[float]]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    results: list[Any] = []
    timings: list[float] = []
    async with (
        endpoint.client(token) as http,
        Client(streamable_http_client(endpoint.url, http_client=http)) as client,
    ):
        # The SDK validates a result against the tool's output schema and lists the tools to
        # learn it after the first call unless they were listed already: listing them first
        # keeps each timed call one request.
        await client.list_tools()
        for tool, args in calls:
            started = time.perf_counter()
            result = await client.call_tool(tool, args)
            timings.append(time.perf_counter() - started)
            if result.is_error:
                text = " ".join(getattr(c, "text", "") for c in result.content)
                raise AssertionError(f"tool {tool} failed: {text}")
            results.append(tool_value(result))
    return results, timings


def call_tools(
    endpoint: Endpoint, token: str | None, calls: Sequence[tuple[str, dict[str, Any]]]
) -> tuple[list[Any], list[float]]:
    """Run ``calls`` in one client session; their values and the seconds each took."""
    return asyncio.run(_session(endpoint, token, calls))


class UnauthorizedError(Exception):
    """The MCP server answered 401 to the token."""


async def _call_once(endpoint: Endpoint, token: str, tool: str, args: dict[str, Any]) -> Any:
    """One tool call in a session of its own; :class:`UnauthorizedError` on a 401."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    try:
        async with (
            endpoint.client(token, on_response=record) as http,
            Client(streamable_http_client(endpoint.url, http_client=http)) as client,
        ):
            result = await client.call_tool(tool, args)
    except Exception as exc:
        if 401 in statuses:
            raise UnauthorizedError(statuses) from exc
        raise
    if result.is_error:
        raise AssertionError(" ".join(getattr(c, "text", "") for c in result.content))
    return tool_value(result)


class RotatingTokenClient:
    """An MCP client during a token rotation, as docs/rotating-secrets.md prescribes.

    It holds two tokens, the one it uses first and the other (the old or the new). While the
    kubelet updates each replica's token file at its own time, a replica not yet updated
    accepts only the old token, one updated accepts both for the server's grace period, then
    only the new. On a 401 the client retries once with the other token and keeps using the
    one that worked.
    """

    def __init__(self, endpoint: Endpoint, token: str) -> None:
        self.endpoint = endpoint
        self.tokens = [token]
        self.retried = 0

    def rotate(self, new: str) -> None:
        """Use ``new`` from now on, keeping the old token for a 401."""
        self.tokens = [new, self.tokens[0]]

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        try:
            return await _call_once(self.endpoint, self.tokens[0], tool, args)
        except UnauthorizedError:
            if len(self.tokens) < 2:
                raise
        self.tokens.reverse()
        self.retried += 1
        return await _call_once(self.endpoint, self.tokens[0], tool, args)

    def stream(
        self, tool: str, args: dict[str, Any], stop: threading.Event, seconds: float
    ) -> dict[str, int]:
        """Call ``tool`` one call after another until ``stop`` is set or ``seconds`` pass;
        counts each outcome (``ok`` or the error)."""

        async def run() -> dict[str, int]:
            outcomes: dict[str, int] = {}
            deadline = time.monotonic() + seconds
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    await self.call(tool, args)
                    key = "ok"
                except Exception as exc:
                    key = f"{type(exc).__name__}: {exc}"[:300]
                outcomes[key] = outcomes.get(key, 0) + 1
                await asyncio.sleep(0.02)
            return outcomes

        return asyncio.run(run())
