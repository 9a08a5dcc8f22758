"""The MCP tools' numeric arguments, bounded like the store API's, through the real MCP SDK.

The SDK's client talks to the real MCP server in this process; the server's store client
talks over ASGI to the real store API app, whose database is a loopback port nothing listens
on. A value just inside a bound passes the tool and the store API's own validation and reaches
the database layer (the tool reports the API's 503); a value just outside is a tool error
naming the argument, and the store API never sees the call.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from .test_store_api import offline_settings, store_api

MCP_SERVER = Path(__file__).resolve().parents[2] / "services" / "mcp-server"
INT4_MAX, INT8_MAX = 2**31 - 1, 2**63 - 1


def mcp_server() -> Any:
    if str(MCP_SERVER) not in sys.path:
        sys.path.insert(0, str(MCP_SERVER))
    return importlib.import_module("mcp_server.server")


class Recorder:
    """An ASGI wrapper around the store API that records each request's method and path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@asynccontextmanager
async def tools() -> AsyncIterator[tuple[Any, Recorder]]:
    """An MCP SDK client of the MCP server, in front of the store API app."""
    from mcp import Client

    api = store_api("app").create_app(offline_settings())
    recorder = Recorder(api)
    server = mcp_server()
    store = server.StoreClient("http://store-api", transport=httpx2.ASGITransport(app=recorder))
    async with (
        api.router.lifespan_context(api),
        store,
        Client(server.build_server(store), raise_exceptions=False) as client,
    ):
        yield client, recorder


def product(**fields: Any) -> dict[str, Any]:
    return {"sku": "sku-1", "name": "Widget", "price_cents": 100, "quantity": 1, **fields}


# (tool, arguments just inside, arguments just outside, the argument the error names)
BOUNDS = [
    ("list_products", {"limit": 1}, {"limit": 0}, "limit"),
    ("list_products", {"limit": 500}, {"limit": 501}, "limit"),
    ("list_products", {"offset": 0}, {"offset": -1}, "offset"),
    ("list_products", {"offset": INT8_MAX}, {"offset": INT8_MAX + 1}, "offset"),
    ("get_product", {"product_id": 1}, {"product_id": 0}, "product_id"),
    ("get_product", {"product_id": INT8_MAX}, {"product_id": INT8_MAX + 1}, "product_id"),
    ("create_product", product(price_cents=0), product(price_cents=-1), "price_cents"),
    ("create_product", product(price_cents=INT4_MAX), product(price_cents=INT4_MAX + 1), "price_cents"),
    ("create_product", product(quantity=0), product(quantity=-1), "quantity"),
    ("create_product", product(quantity=INT4_MAX), product(quantity=INT4_MAX + 1), "quantity"),
    ("adjust_stock", {"product_id": 1, "delta": 1}, {"product_id": 0, "delta": 1}, "product_id"),
    (
        "adjust_stock",
        {"product_id": INT8_MAX, "delta": 1},
        {"product_id": INT8_MAX + 1, "delta": 1},
        "product_id",
    ),
    ("adjust_stock", {"product_id": 1, "delta": INT4_MAX}, {"product_id": 1, "delta": INT4_MAX + 1}, "delta"),
    (
        "adjust_stock",
        {"product_id": 1, "delta": -INT4_MAX},
        {"product_id": 1, "delta": -INT4_MAX - 1},
        "delta",
    ),
]


def text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.parametrize(("tool", "inside", "outside", "argument"), BOUNDS)
def test_every_numeric_tool_argument_is_bounded_like_the_store_api(
    tool: str, inside: dict[str, Any], outside: dict[str, Any], argument: str
) -> None:
    async def scenario() -> tuple[Any, list[str], Any, list[str]]:
        async with tools() as (client, recorder):
            ok = await client.call_tool(tool, inside)
            reached = list(recorder.seen)
            bad = await client.call_tool(tool, outside)
            return ok, reached, bad, recorder.seen[len(reached) :]

    ok, reached, bad, after = asyncio.run(scenario())
    # Inside: through the tool and the store API's validation to the (unreachable) database.
    assert ok.is_error and "store API answered 503: database unavailable" in text(ok), (inside, text(ok))
    assert len(reached) == 1, reached
    # Outside: the tool refuses it, naming the argument, before any call to the store API.
    assert bad.is_error, (outside, text(bad))
    message = text(bad)
    assert f"\n{argument}\n" in message and "Input should be" in message, message
    assert after == [], f"{tool}({outside}) reached the store API: {after}"


def _store_bounds() -> dict[tuple[str, str], dict[str, Any]]:
    """The store API's bounds of each numeric input from its OpenAPI document, keyed the way
    the tools name them: (tool, argument)."""
    spec = store_api("app").create_app(offline_settings()).openapi()
    paths, schemas = spec["paths"], spec["components"]["schemas"]

    def parameter(path: str, method: str, name: str) -> dict[str, Any]:
        [p] = [p for p in paths[path][method]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = p["schema"]
        return schema

    product_in, stock = schemas["ProductIn"]["properties"], schemas["StockChange"]["properties"]
    return {
        ("list_products", "limit"): parameter("/products", "get", "limit"),
        ("list_products", "offset"): parameter("/products", "get", "offset"),
        ("get_product", "product_id"): parameter("/products/{product_id}", "get", "product_id"),
        ("create_product", "price_cents"): product_in["price_cents"],
        ("create_product", "quantity"): product_in["quantity"],
        ("adjust_stock", "product_id"): parameter("/products/{product_id}/stock", "post", "product_id"),
        ("adjust_stock", "delta"): stock["delta"],
    }


def test_tool_input_schemas_advertise_the_store_api_bounds() -> None:
    """Every integer argument of every tool has the store API's minimum and maximum, and
    every bound the store API has on a tool's input is on the tool: the two services cannot
    drift apart."""

    async def listed() -> list[Any]:
        async with tools() as (client, _):
            return list((await client.list_tools()).tools)

    expected = _store_bounds()
    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    for tool in asyncio.run(listed()):
        for name, schema in tool.input_schema["properties"].items():
            if schema.get("type") == "integer":
                found[(tool.name, name)] = (schema.get("minimum"), schema.get("maximum"))
    assert set(found) == set(expected), f"integer arguments {sorted(found)} vs the API's {sorted(expected)}"
    for key, (minimum, maximum) in found.items():
        api = expected[key]
        assert (minimum, maximum) == (api["minimum"], api["maximum"]), (key, (minimum, maximum), api)
        assert minimum is not None and maximum is not None, key


def test_a_store_api_validation_error_reaches_the_caller_as_field_and_message() -> None:
    """What the tools leave to the store API (here a ``sku`` longer than its column) comes
    back as a tool error naming the field in one line, not FastAPI's JSON list."""

    async def scenario() -> Any:
        async with tools() as (client, _):
            return await client.call_tool("create_product", product(sku="x" * 65))

    result = asyncio.run(scenario())
    assert result.is_error
    expected = "store API answered 422: sku: String should have at most 64 characters"
    assert text(result).endswith(expected), text(result)
