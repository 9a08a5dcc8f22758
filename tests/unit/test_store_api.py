"""The store API's edge, in-process over ASGI: input bounds, liveness, readiness, 503s.

The app runs with its real lifespan (pool and background migrations) against a loopback
port nothing listens on, so every request that passes validation reaches the database layer
and gets the "database unavailable" answer: a 422 then can only come from validation.
Each numeric input is tried just inside and just outside what its column stores.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

SERVICE = Path(__file__).resolve().parents[2] / "services" / "store-api"
INT4_MAX, INT8_MAX = 2**31 - 1, 2**63 - 1


def store_api(module: str) -> Any:
    """A module of the store API package, imported from its source directory."""
    if str(SERVICE) not in sys.path:
        sys.path.insert(0, str(SERVICE))
    return importlib.import_module(f"store_api.{module}")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def offline_settings(**overrides: Any) -> Any:
    """The store API's settings for a database on a loopback port nothing listens on, with
    short timeouts; ``overrides`` replace any field."""
    return store_api("settings").Settings(
        **{
            "database_url": f"postgresql://store:pw@127.0.0.1:{closed_port()}/store_db",
            "host": "127.0.0.1",
            "port": 8000,
            "pool_max_size": 2,
            "connect_timeout": 0.3,
            "command_timeout": 1.0,
            "migration_timeout": 1.0,
            **overrides,
        }
    )


@asynccontextmanager
async def client(**overrides: Any) -> AsyncIterator[httpx2.AsyncClient]:
    settings = offline_settings(**overrides)
    app = store_api("app").create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://store") as c:
            yield c


def run(body: Callable[[httpx2.AsyncClient], Awaitable[None]], **overrides: Any) -> None:
    async def main() -> None:
        async with client(**overrides) as c:
            await body(c)

    asyncio.run(main())


def product(**fields: Any) -> dict[str, Any]:
    return {"sku": "sku-1", "name": "Widget", "price_cents": 100, "quantity": 1, **fields}


P, S = "/products", "/products/1/stock"

# (method, path and body just inside, path and body just outside, the field the 422 names)
BOUNDS = [
    ("POST", (P, product(price_cents=INT4_MAX)), (P, product(price_cents=INT4_MAX + 1)), "price_cents"),
    ("POST", (P, product(price_cents=0)), (P, product(price_cents=-1)), "price_cents"),
    ("POST", (P, product(quantity=INT4_MAX)), (P, product(quantity=INT4_MAX + 1)), "quantity"),
    ("POST", (P, product(quantity=0)), (P, product(quantity=-1)), "quantity"),
    ("POST", (S, {"delta": INT4_MAX}), (S, {"delta": INT4_MAX + 1}), "delta"),
    ("POST", (S, {"delta": -INT4_MAX}), (S, {"delta": -INT4_MAX - 1}), "delta"),
    (
        "POST",
        (f"{P}/{INT8_MAX}/stock", {"delta": 1}),
        (f"{P}/{INT8_MAX + 1}/stock", {"delta": 1}),
        "product_id",
    ),
    ("POST", (f"{P}/1/stock", {"delta": 1}), (f"{P}/0/stock", {"delta": 1}), "product_id"),
    ("GET", (f"{P}/{INT8_MAX}", None), (f"{P}/{INT8_MAX + 1}", None), "product_id"),
    ("GET", (f"{P}/1", None), (f"{P}/0", None), "product_id"),
    ("DELETE", (f"{P}/{INT8_MAX}", None), (f"{P}/{INT8_MAX + 1}", None), "product_id"),
    ("GET", (f"{P}?offset={INT8_MAX}", None), (f"{P}?offset={INT8_MAX + 1}", None), "offset"),
    ("GET", (f"{P}?offset=0", None), (f"{P}?offset=-1", None), "offset"),
    ("GET", (f"{P}?limit=500", None), (f"{P}?limit=501", None), "limit"),
    ("GET", (f"{P}?limit=1", None), (f"{P}?limit=0", None), "limit"),
]


@pytest.mark.parametrize(("method", "inside", "outside", "field"), BOUNDS)
def test_every_numeric_input_is_bounded_to_its_column(
    method: str, inside: tuple[str, Any], outside: tuple[str, Any], field: str
) -> None:
    async def check(c: httpx2.AsyncClient) -> None:
        ok = await c.request(method, inside[0], json=inside[1])
        # Past validation: the request reached the (unreachable) database.
        assert ok.status_code == 503, (inside, ok.status_code, ok.text)
        bad = await c.request(method, outside[0], json=outside[1])
        assert bad.status_code == 422, (outside, bad.status_code, bad.text)
        assert [e["loc"][-1] for e in bad.json()["detail"]] == [field], bad.json()

    run(check)


def test_liveness_never_touches_the_database_and_readiness_reports_it() -> None:
    async def check(c: httpx2.AsyncClient) -> None:
        health = await c.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await c.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "unreachable"}

    run(check)


def test_an_unreachable_database_gets_503_with_retry_after() -> None:
    async def check(c: httpx2.AsyncClient) -> None:
        answer = await c.get("/products/1")
        assert answer.status_code == 503
        assert answer.json() == {"detail": "database unavailable"}
        assert answer.headers["retry-after"] == "7"

    run(check, retry_after_seconds=7)


def test_each_new_connection_reads_the_url_file_again(tmp_path: Path) -> None:
    url_file = tmp_path / "DATABASE_URL"
    url_file.write_text("postgresql://store:old@db:5432/store_db\n")
    settings = offline_settings(
        database_url="postgresql://store:old@db:5432/store_db", database_url_file=str(url_file)
    )
    url_file.write_text("postgresql://store:new@db:5432/store_db\n")
    assert settings.current_database_url() == "postgresql://store:new@db:5432/store_db"
    url_file.unlink()
    assert settings.current_database_url() == settings.database_url, "a missing file keeps the last known URL"
