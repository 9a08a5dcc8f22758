"""A lazily connecting asyncpg pool and the products table.

The pool is created with ``min_size=0`` so the process starts (and answers ``/health``) while
PostgreSQL is still unreachable; every query connects on demand, bounded by the connect timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from .settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id          BIGSERIAL PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    quantity    INTEGER NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class Database:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._schema_ready = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._settings.database_url,
            min_size=0,
            max_size=self._settings.pool_max_size,
            timeout=self._settings.connect_timeout,
            command_timeout=self._settings.command_timeout,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise RuntimeError("database pool is not started")
        async with self._pool.acquire(timeout=self._settings.connect_timeout) as conn:
            if not self._schema_ready:
                async with self._lock:
                    if not self._schema_ready:
                        await conn.execute(SCHEMA)
                        self._schema_ready = True
            yield conn

    async def ping(self) -> None:
        """Run ``SELECT 1``; raises if PostgreSQL cannot be reached in time."""
        if self._pool is None:
            raise RuntimeError("database pool is not started")
        async with self._pool.acquire(timeout=self._settings.connect_timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=self._settings.connect_timeout)
