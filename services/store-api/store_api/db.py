"""A lazily connecting asyncpg pool, and the schema migrations run once at startup.

The pool is created with ``min_size=0`` so the process starts (and answers ``/health``) while
PostgreSQL is still unreachable; every query connects on demand, bounded by the connect timeout.
A failed readiness check expires the pool's connections, so after PostgreSQL restarts the
next requests connect to the new server instead of failing on the old connections.

Migrations run in the background after startup (:meth:`Database.migrate_until_done`), retrying
until PostgreSQL answers. Each run takes a PostgreSQL advisory lock first, so when several
replicas start at once against an empty database one of them applies each migration and the
others wait, then find it recorded in ``schema_migrations`` and apply nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from .settings import Settings

log = logging.getLogger("store_api.db")

MIGRATION_LOCK_KEY = 0x53544F5245  # "STORE": one advisory lock id for this schema
"""``pg_advisory_lock`` key serialising migrations across every replica."""

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE products (
            id          BIGSERIAL PRIMARY KEY,
            sku         TEXT NOT NULL UNIQUE,
            name        TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            quantity    INTEGER NOT NULL DEFAULT 0 CHECK (quantity >= 0),
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """,
    ),
)
"""Schema versions in order; each is applied once, in its own transaction."""

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_by TEXT NOT NULL
)
"""


class SchemaNotReadyError(RuntimeError):
    """The migrations have not been applied yet."""


class Database:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self.schema_ready = False

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

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool is not started")
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if not self.schema_ready:
            raise SchemaNotReadyError("schema migrations have not run yet")
        async with self._require_pool().acquire(timeout=self._settings.connect_timeout) as conn:
            yield conn

    async def ping(self) -> None:
        """Run ``SELECT 1`` within the connect timeout; raises if PostgreSQL cannot answer.

        On failure every pooled connection is expired: after PostgreSQL restarts, the pool's
        idle connections point at the old server, and each would otherwise fail one request
        before the pool replaced it. The next acquire connects afresh.
        """
        pool = self._require_pool()
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except Exception:
            await pool.expire_connections()
            raise

    async def migrate(self) -> list[int]:
        """Apply the pending migrations under the advisory lock; the versions applied here."""
        applied: list[int] = []
        me = socket.gethostname()
        conn: asyncpg.Connection = await asyncpg.connect(
            self._settings.database_url,
            timeout=self._settings.connect_timeout,
            command_timeout=self._settings.migration_timeout,
        )
        try:
            # Session lock: released on unlock or when this connection ends, whatever happens.
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            try:
                await conn.execute(_LEDGER)
                done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, sql in MIGRATIONS:
                    if version in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, applied_by) VALUES ($1, $2)", version, me
                        )
                    applied.append(version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        finally:
            await conn.close()
        return applied

    async def migrate_until_done(self, retry_seconds: float = 1.0) -> None:
        """Retry :meth:`migrate` until it succeeds, then mark the schema ready."""
        while True:
            try:
                applied = await self.migrate()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning(
                    "migrations not run yet (%s: %s); retrying in %.0fs",
                    type(exc).__name__,
                    exc,
                    retry_seconds,
                )
                await asyncio.sleep(retry_seconds)
                continue
            if applied:
                log.info("schema migrations applied: %s", ", ".join(map(str, applied)))
            else:
                log.info("schema up to date; no migration applied")
            self.schema_ready = True
            return
