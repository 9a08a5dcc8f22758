"""The MCP tools and the HTTP app serving them (streamable HTTP at ``/mcp``).

``/health`` answers while the process serves requests (the liveness probe and the image's
HEALTHCHECK); ``/ready`` also requires the account book to be loaded, which happens in the
app's startup, so a pod takes traffic only once the tools can answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import __version__
from .accounts import SAMPLE_BOOK, Account, Segment, health, summary


class Book:
    """The accounts, by id; empty until :meth:`load` runs at startup."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}

    def load(self, accounts: Sequence[Account]) -> None:
        self.accounts = {a.id: a for a in accounts}

    def get(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            known = ", ".join(sorted(self.accounts))
            raise ToolError(f"no account {account_id!r}; known accounts: {known}") from None


def build_server(book: Book) -> MCPServer:
    mcp = MCPServer(
        name="customer-success",
        version=__version__,
        instructions="Look up customer accounts, their health scores and the accounts at risk.",
    )

    @mcp.tool()
    async def list_accounts(segment: Segment | None = None) -> list[dict[str, Any]]:
        """Every account (or those of one segment) with its health score, by id."""
        return [summary(a) for _, a in sorted(book.accounts.items()) if segment in (None, a.segment)]

    @mcp.tool()
    async def account_health(account_id: str) -> dict[str, int]:
        """The health score of one account (0-100) and the points of each part."""
        return health(book.get(account_id))

    @mcp.tool()
    async def at_risk_accounts(threshold: int = 60) -> list[dict[str, Any]]:
        """Accounts scoring below ``threshold``, lowest first: whom to call this week."""
        scored = [summary(a) for a in book.accounts.values()]
        return sorted((s for s in scored if s["health"] < threshold), key=lambda s: (s["health"], s["id"]))

    # The SDK's custom_route carries no type annotations; the handlers themselves are typed.
    @mcp.custom_route("/health", methods=["GET"])  # type: ignore[untyped-decorator]
    async def live(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @mcp.custom_route("/ready", methods=["GET"])  # type: ignore[untyped-decorator]
    async def ready(_: Request) -> Response:
        if book.accounts:
            return JSONResponse({"status": "ready", "accounts": len(book.accounts)})
        return JSONResponse({"status": "starting"}, status_code=503)

    return mcp


def create_app(host: str) -> Starlette:
    """The ASGI app; ``host`` is the address it listens on (the SDK's transport checks use it)."""
    book = Book()
    app = build_server(book).streamable_http_app(stateless_http=True, json_response=True, host=host)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        book.load(SAMPLE_BOOK)
        async with inner(app) as state:
            yield state

    app.router.lifespan_context = lifespan
    return app
