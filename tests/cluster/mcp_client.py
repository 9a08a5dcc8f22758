"""The real ``mcp`` SDK client, through the Ingress controller over HTTPS.

Traefik listens on 127.0.0.1; the client dials that address and presents the Ingress host
as SNI and ``Host``, and verifies the certificate against the test's own CA for that name,
as a client resolving the public name to the controller would.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Sequence
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

    def client(self, token: str | None) -> httpx2.AsyncClient:
        async def sni(request: httpx2.Request) -> None:
            request.extensions["sni_hostname"] = self.host

        headers = {"Host": self.host}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx2.AsyncClient(
            headers=headers,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            timeout=httpx2.Timeout(30, read=120),
            event_hooks={"request": [sni]},
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
