"""HTTP routes: liveness, readiness and the products resource."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from . import __version__
from .db import Database, PoolBusyError, SchemaNotReadyError
from .settings import Settings

log = logging.getLogger("store_api")

PRODUCT_COLUMNS = "id, sku, name, description, price_cents, quantity, created_at, updated_at"

INT4_MAX = 2**31 - 1
"""Largest PostgreSQL ``integer``: the columns ``price_cents`` and ``quantity``."""
INT8_MAX = 2**63 - 1
"""Largest PostgreSQL ``bigint``: product ids (``BIGSERIAL``) and offsets."""

ProductId = Annotated[int, Path(ge=1, le=INT8_MAX, description="Product id (1 to 2^63-1).")]


class ProductIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    price_cents: int = Field(ge=0, le=INT4_MAX)
    quantity: int = Field(default=0, ge=0, le=INT4_MAX)


class StockChange(BaseModel):
    delta: int = Field(
        ge=-INT4_MAX,
        le=INT4_MAX,
        description="Units to add (positive) or remove (negative); the resulting quantity must "
        "stay between 0 and 2^31-1.",
    )


def _invalid(field: str, message: str, value: object) -> RequestValidationError:
    """A 422 in FastAPI's own validation-error shape, naming the body field."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": value}]
    )


class Product(ProductIn):
    id: int
    created_at: datetime
    updated_at: datetime


def _product(row: asyncpg.Record) -> Product:
    return Product(**dict(row))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    db = Database(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.start()
        migrations = asyncio.create_task(db.migrate_until_done(), name="migrations")
        try:
            yield
        finally:
            migrations.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await migrations
            await db.close()

    app = FastAPI(title="store-inventory", version=__version__, lifespan=lifespan)

    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.exceptions.ConnectionDoesNotExistError)
    @app.exception_handler(asyncpg.exceptions.OperatorInterventionError)
    @app.exception_handler(asyncpg.CannotConnectNowError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(SchemaNotReadyError)
    @app.exception_handler(asyncpg.InvalidAuthorizationSpecificationError)
    @app.exception_handler(asyncpg.InvalidCatalogNameError)
    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return JSONResponse(
            {"detail": "database unavailable"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    @app.exception_handler(PoolBusyError)
    async def pool_busy(_: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL answered the check made before this: the replica is overloaded, not
        # broken. Rare by design (settings.acquire_timeout outlasts an ordinary burst).
        log.warning("database connections busy: %s", exc)
        return JSONResponse(
            {"detail": "database connections busy"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process serves requests. Does not touch the database."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: a new connection to the application database runs ``SELECT 1`` and the
        migrations are done, else 503 (no traffic is routed here). Not the pool: a replica
        whose pooled connections are all busy still serves, by queueing (``DB_ACQUIRE_TIMEOUT``).
        A password refused during a rotation while the pool holds connections is still ready,
        with ``database`` saying so instead of ``ok``."""
        try:
            database = await db.ping()
        except Exception as exc:
            log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        if not db.schema_ready:
            return JSONResponse(
                {"status": "unavailable", "database": "not migrated"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return JSONResponse({"status": "ready", "database": database})

    @app.get("/products")
    async def list_products(
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=INT8_MAX)] = 0,
    ) -> list[Product]:
        async with db.connection() as conn:
            rows = await conn.fetch(
                f"SELECT {PRODUCT_COLUMNS} FROM products ORDER BY id LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [_product(r) for r in rows]

    @app.get("/products/{product_id}")
    async def get_product(product_id: ProductId) -> Product:
        async with db.connection() as conn:
            row = await conn.fetchrow(f"SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1", product_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "product not found")
        return _product(row)

    @app.post("/products", status_code=status.HTTP_201_CREATED)
    async def create_product(product: ProductIn) -> Product:
        try:
            async with db.connection() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO products (sku, name, description, price_cents, quantity)"
                    f" VALUES ($1, $2, $3, $4, $5) RETURNING {PRODUCT_COLUMNS}",
                    product.sku,
                    product.name,
                    product.description,
                    product.price_cents,
                    product.quantity,
                )
        except asyncpg.UniqueViolationError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, "sku already exists") from exc
        assert row is not None
        return _product(row)

    @app.post("/products/{product_id}/stock")
    async def change_stock(product_id: ProductId, change: StockChange) -> Product:
        try:
            async with db.connection() as conn:
                row = await conn.fetchrow(
                    "UPDATE products SET quantity = quantity + $2, updated_at = now()"
                    f" WHERE id = $1 RETURNING {PRODUCT_COLUMNS}",
                    product_id,
                    change.delta,
                )
        except asyncpg.CheckViolationError as exc:
            # Names the product: a caller adjusting several at once knows which one ran short.
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"not enough stock of product {product_id} for delta {change.delta}"
            ) from exc
        except asyncpg.NumericValueOutOfRangeError:
            raise _invalid("delta", f"the resulting quantity would exceed {INT4_MAX}", change.delta) from None
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "product not found")
        return _product(row)

    @app.delete("/products/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_product(product_id: ProductId) -> None:
        async with db.connection() as conn:
            result: Any = await conn.execute("DELETE FROM products WHERE id = $1", product_id)
        if result == "DELETE 0":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "product not found")

    return app
