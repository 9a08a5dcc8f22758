"""The MCP tools and the HTTP app that serves them (streamable HTTP at ``/mcp``).

Every tool is a thin, typed call to the store API, at ``STORE_INVENTORY_URL`` (what the
platform injects for the ``store-inventory`` peer the Deployment may call) or, when run by
hand, ``STORE_API_URL``. ``/health`` answers while the process serves requests; ``/ready``
also requires the store API to answer.

Every other request must carry ``Authorization: Bearer <token>`` (401 otherwise), the token
read from the file named by ``AUTH_TOKEN_FILE`` (or ``AUTH_TOKEN`` locally); the server
refuses to start without one. When the file changes, the previous token is still accepted for
``AUTH_TOKEN_GRACE_SECONDS`` (default 120). DNS-rebinding protection is always on: the
``Host`` header must be one of ``ALLOWED_HOSTS`` (comma-separated, ``host`` or ``host:port``
or ``host:*``) or a loopback name.

Every numeric tool argument is bounded to what the database stores, with the store API's
own bounds: a value outside is a tool error naming the argument, and the store API is not
called.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx2
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import __version__

DEFAULT_STORE_API_URL = "http://store-inventory:8000"
"""The store API's in-cluster Service."""

PROBE_PATHS = frozenset({"/health", "/ready"})
"""Paths the kubelet probes; they answer without a token and reveal nothing."""

LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")

READY_TIMEOUT = 1.5
"""Seconds ``/ready`` waits for the store API, below the readiness probe's timeoutSeconds (2)."""

TOKEN_RECHECK_SECONDS = 1.0
"""Most seconds a matching token is accepted without reading the token file again: how long
the server may take to see the kubelet's update of the file, after which the replaced token's
grace starts (a read costs microseconds)."""

TOKEN_GRACE_SECONDS = 120.0
"""Default seconds the previous token is still accepted after the token file changed
(``AUTH_TOKEN_GRACE_SECONDS``). The kubelet rewrites each replica's file at its own pod sync,
up to its sync period (1 min by default) plus its Secret cache apart: without a grace a
client's old token is refused by the replicas already updated while its new one is refused
by the others. 120 s covers that window; 0 refuses the old token as soon as the file changes."""

KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle pooled connection is kept: below uvicorn's keep-alive timeout (5 s) on the
store API, so the client drops a connection before the server closes it under a request."""


INT4_MAX = 2**31 - 1
"""Largest PostgreSQL ``integer``: the columns ``price_cents`` and ``quantity``."""
INT8_MAX = 2**63 - 1
"""Largest PostgreSQL ``bigint``: product ids (``BIGSERIAL``) and offsets."""
LIST_LIMIT_MAX = 500
"""Most products one ``GET /products`` returns."""

# The same bounds as the store API's (services/store-api/store_api/app.py): the two images are
# built from separate contexts, so the numbers are written in each, and the unit tier compares
# every tool's input schema with the store API's OpenAPI document.
ProductId = Annotated[int, Field(ge=1, le=INT8_MAX, description="A product's id (1 to 2^63-1).")]
Limit = Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX, description="Products to return (1 to 500).")]
Offset = Annotated[int, Field(ge=0, le=INT8_MAX, description="Products to skip (0 to 2^63-1).")]
PriceCents = Annotated[int, Field(ge=0, le=INT4_MAX, description="Price in cents (0 to 2^31-1).")]
Quantity = Annotated[int, Field(ge=0, le=INT4_MAX, description="Units in stock (0 to 2^31-1).")]
Delta = Annotated[
    int,
    Field(
        ge=-INT4_MAX,
        le=INT4_MAX,
        description="Units to add (positive) or remove (negative), -(2^31-1) to 2^31-1; the "
        "resulting quantity must stay between 0 and 2^31-1.",
    ),
]


def _detail(detail: Any) -> str:
    """The store API's error detail as one line: FastAPI's validation errors as
    ``field: message`` (``body.delta: ...``), anything else as it is."""
    if isinstance(detail, list) and all(isinstance(e, dict) and "msg" in e for e in detail):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e['msg']}" for e in detail
        )
    return str(detail)


class StoreAPIError(ToolError):
    """The store API answered with an error; the message is what the tool caller sees."""


class StoreClient:
    """The few store API calls the tools need, over one pooled HTTP client.

    The client (and with it the pool of keep-alive connections) is opened once, when the app
    starts (:meth:`open`, called from the app's lifespan), and closed when it stops. Building
    an ``httpx2.AsyncClient`` per call cost 35-90 ms on the project's 2-core machine (nearly
    all of it loading the CA bundle into the TLS context it prepares even for plain HTTP),
    plus a TCP handshake per call: that was most of a tool call's ~110 ms.

    Defaults: ``timeout`` 10 s per request, ``connect_timeout`` 1 s, at most
    ``max_connections`` (100) connections, idle ones kept ``keepalive_expiry`` (4 s).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        connect_timeout: float = 1.0,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = httpx2.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None
        self.clients_opened = 0
        """How many HTTP clients this store client has built (1 for a server's whole life)."""

    def open(self) -> None:
        """Build the pooled client; idempotent. Connections are made on first use."""
        if self._client is not None:
            return
        self._client = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=self._timeout,
            limits=self._limits,
            # The store API is an in-cluster peer: never through a proxy from the environment,
            # and no per-request lookups of proxy variables or .netrc.
            trust_env=False,
            transport=self._transport,
        )
        self.clients_opened += 1

    async def aclose(self) -> None:
        """Close the pooled connections; a later request opens a new client."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> StoreClient:
        self.open()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        # Outside a running app (a tool called directly) the client opens here, once.
        self.open()
        assert self._client is not None
        limit = self._timeout if timeout is None else httpx2.Timeout(timeout)
        try:
            response = await self._client.request(method, path, timeout=limit, **kwargs)
        except httpx2.HTTPError as exc:
            raise StoreAPIError(f"store API unreachable: {exc!s}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise StoreAPIError(f"store API answered {response.status_code}: {_detail(detail)}")
        return None if response.status_code == 204 else response.json()

    async def healthy(self) -> bool:
        try:
            await self.request("GET", "/health", timeout=READY_TIMEOUT)
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
    async def list_products(limit: Limit = 50, offset: Offset = 0) -> list[dict[str, Any]]:
        """List products ordered by id, ``limit`` (1-500) at a time from ``offset``."""
        result: list[dict[str, Any]] = await store.request(
            "GET", "/products", params={"limit": limit, "offset": offset}
        )
        return result

    @mcp.tool()
    async def get_product(product_id: ProductId) -> dict[str, Any]:
        """One product by its numeric id."""
        result: dict[str, Any] = await store.request("GET", f"/products/{product_id}")
        return result

    @mcp.tool()
    async def create_product(
        sku: str, name: str, price_cents: PriceCents, quantity: Quantity = 0, description: str = ""
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
    async def adjust_stock(product_id: ProductId, delta: Delta) -> dict[str, Any]:
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
    """Host/Origin checks against DNS rebinding: ``ALLOWED_HOSTS`` plus the loopback names."""
    hosts = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    hosts += [f"{h}:*" for h in hosts if ":" not in h]
    hosts += LOOPBACK_HOSTS
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")],
    )


class BearerAuth:
    """401 unless the request carries ``Authorization: Bearer <token>`` (probes excepted).

    The token is read again with ``reload()`` (the mounted Secret file) before refusing one
    that does not match, and at most ``recheck_seconds`` after the last read otherwise: a
    rotated ``authToken`` is accepted as soon as the kubelet has updated the file, without a
    restart. The token it replaced is still accepted for ``grace_seconds`` after the server
    saw the change, then refused, even by a server that no client has shown the new token:
    during a rotation every replica accepts the old token (those not yet updated, and those
    updated within the grace), so a client that retries a 401 once with the other token is
    served by any replica.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs every request through a
    task group and memory streams, a cost paid by each tool call for one header comparison.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        reload: Callable[[], str] | None = None,
        recheck_seconds: float = TOKEN_RECHECK_SECONDS,
        grace_seconds: float = TOKEN_GRACE_SECONDS,
    ) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._previous = b""
        self._previous_until = 0.0
        self._reload = reload
        self._recheck_seconds = recheck_seconds
        self._grace_seconds = grace_seconds
        self._read_at = time.monotonic()

    def _read(self) -> None:
        assert self._reload is not None
        try:
            token = self._reload()
        except OSError:
            return  # an unreadable file keeps the last token
        self._read_at = time.monotonic()
        expected = f"Bearer {token}".encode()
        if token and expected != self._expected:
            self._previous, self._expected = self._expected, expected
            self._previous_until = self._read_at + self._grace_seconds

    def _accepts(self, given: bytes) -> bool:
        if hmac.compare_digest(given, self._expected):
            return True
        return time.monotonic() < self._previous_until and hmac.compare_digest(given, self._previous)

    def _matches(self, given: bytes) -> bool:
        if self._reload is not None and time.monotonic() - self._read_at >= self._recheck_seconds:
            self._read()
        if self._accepts(given):
            return True
        if self._reload is None:
            return False
        self._read()
        return self._accepts(given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in PROBE_PATHS:
            given = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    given = value
                    break
            if not self._matches(given):
                response = JSONResponse(
                    {"detail": "missing or invalid bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def store_api_url() -> str:
    """The platform-injected peer URL, else the hand-set one, else the in-cluster default."""
    return os.environ.get("STORE_INVENTORY_URL") or os.environ.get("STORE_API_URL") or DEFAULT_STORE_API_URL


def auth_token() -> str:
    """The bearer token from the file named by ``AUTH_TOKEN_FILE`` (a mounted Secret, as in a
    cluster), else from ``AUTH_TOKEN`` (local runs); surrounding whitespace dropped."""
    path = os.environ.get("AUTH_TOKEN_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get("AUTH_TOKEN", "").strip()


def token_grace_seconds() -> float:
    """``AUTH_TOKEN_GRACE_SECONDS``: a number of seconds from 0 to 3600, default
    :data:`TOKEN_GRACE_SECONDS`; anything else stops the server with the fix."""
    raw = os.environ.get("AUTH_TOKEN_GRACE_SECONDS", "").strip()
    if not raw:
        return TOKEN_GRACE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:  # also refuses nan
        raise SystemExit(
            f"AUTH_TOKEN_GRACE_SECONDS is {raw}: use a number of seconds from 0 to 3600 "
            f"(default {TOKEN_GRACE_SECONDS:g}; 0 refuses the old token as soon as the file changes)"
        )
    return seconds


def create_app() -> Starlette:
    grace_seconds = token_grace_seconds()
    token = auth_token()
    if not token:
        raise SystemExit(
            "AUTH_TOKEN_FILE (or AUTH_TOKEN) is not set or empty: the MCP server does not serve "
            "without a bearer token"
        )
    store = StoreClient(store_api_url())
    app = build_server(store).streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(),
        host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
    )
    app.add_middleware(BearerAuth, token=token, reload=auth_token, grace_seconds=grace_seconds)
    serve_mcp = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        # One pooled store API client for the server's whole life, closed after the MCP
        # session manager has stopped (so no call in flight still needs it).
        async with store, serve_mcp(app) as state:
            yield state

    app.router.lifespan_context = lifespan
    app.state.store = store
    return app
