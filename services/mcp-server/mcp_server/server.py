"""The MCP tools and the HTTP app that serves them (streamable HTTP at ``/mcp``).

Every tool is a thin, typed call to the store API (``STORE_API_URL``). ``/health`` answers
while the process serves requests; ``/ready`` also requires the store API to answer.
"""

from __future__ import annotations

import os
from typing import Any

import httpx2
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import __version__

DEFAULT_STORE_API_URL = "http://store-inventory:8000"
"""The store API's in-cluster Service."""


class StoreAPIError(ToolError):
    """The store API answered with an error; the message is what the tool caller sees."""


class StoreClient:
    """The few store API calls the tools need."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx2.Timeout(timeout, connect=3.0)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx2.AsyncClient(base_url=self.base_url, timeout=self._timeout) as client:
            try:
                response = await client.request(method, path, **kwargs)
            except httpx2.HTTPError as exc:
                raise StoreAPIError(f"store API unreachable: {exc!s}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise StoreAPIError(f"store API answered {response.status_code}: {detail}")
        return None if response.status_code == 204 else response.json()

    async def healthy(self) -> bool:
        try:
            await self.request("GET", "/health")
        except StoreAPIError:
            return False
        return True


def build_server(store: StoreClient) -> MCPServer:
    mcp = MCPServer(
        name="store-inventory",
        version=__version__,
        instructions="Look up, add and restock products of the store inventory.",
    )

    @mcp.tool()
    async def list_products(limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """List products ordered by id, ``limit`` (1-500) at a time from ``offset``."""
        result: list[dict[str, Any]] = await store.request(
            "GET", "/products", params={"limit": limit, "offset": offset}
        )
        return result

    @mcp.tool()
    async def get_product(product_id: int) -> dict[str, Any]:
        """One product by its numeric id."""
        result: dict[str, Any] = await store.request("GET", f"/products/{product_id}")
        return result

    @mcp.tool()
    async def create_product(
        sku: str, name: str, price_cents: int, quantity: int = 0, description: str = ""
    ) -> dict[str, Any]:
        """Add a product; ``sku`` must be unique, price is in cents."""
        body = {
            "sku": sku,
            "name": name,
            "price_cents": price_cents,
            "quantity": quantity,
            "description": description,
        }
        result: dict[str, Any] = await store.request("POST", "/products", json=body)
        return result

    @mcp.tool()
    async def adjust_stock(product_id: int, delta: int) -> dict[str, Any]:
        """Add (positive ``delta``) or remove (negative) units of a product's stock."""
        result: dict[str, Any] = await store.request(
            "POST", f"/products/{product_id}/stock", json={"delta": delta}
        )
        return result

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @mcp.custom_route("/ready", methods=["GET"])
    async def ready(_: Request) -> Response:
        if await store.healthy():
            return JSONResponse({"status": "ready", "store_api": "ok"})
        return JSONResponse({"status": "unavailable", "store_api": "unreachable"}, status_code=503)

    return mcp


def transport_security() -> TransportSecuritySettings:
    """Host/Origin checks against DNS rebinding, from ``MCP_ALLOWED_HOSTS`` (comma-separated).

    Unset, the checks are off: the server sits behind a ClusterIP Service and a NetworkPolicy,
    and clients reach it under whatever Service name the cluster gives it.
    """
    hosts = [h.strip() for h in os.environ.get("MCP_ALLOWED_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts],
    )


def create_app() -> Starlette:
    store = StoreClient(os.environ.get("STORE_API_URL", DEFAULT_STORE_API_URL))
    return build_server(store).streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(),
        host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
    )
