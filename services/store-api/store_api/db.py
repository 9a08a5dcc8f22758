"""A lazily connecting asyncpg pool, and the schema migrations run once at startup.

The pool is created with ``min_size=0`` so the process starts (and answers ``/health``) while
PostgreSQL is still unreachable; every query connects on demand, bounded by the connect timeout.
Every new connection reads the URL from its mounted Secret file again
(:meth:`Settings.current_database_url`), so a rotated password is picked up without a restart,
and a refused password is retried briefly, since the kubelet updates the client's file and the
database's at slightly different times.

Readiness (:meth:`Database.ping`) opens a connection of its own instead of taking one from the
pool: a pool busy with a burst of requests says nothing about whether PostgreSQL answers. A
failed check expires the pool's connections, so after PostgreSQL restarts the next requests
connect to the new server instead of failing on the old connections; a refused password
(during a rotation) keeps them and the replica ready while it holds any.

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
from typing import Any

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


AUTH_RETRY_SECONDS = 0.5
"""Pause before connecting again after PostgreSQL refused the password (a rotation under way)."""


class SchemaNotReadyError(RuntimeError):
    """The migrations have not been applied yet."""


class PoolBusyError(TimeoutError):
    """Every pooled connection stayed busy for the whole acquire timeout."""


class Database:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self.schema_ready = False

    async def _connect(self, *_: object, **kwargs: Any) -> asyncpg.Connection:
        """A new connection with the URL as its Secret file holds it now.

        A refused password is tried again (with the file read again) until the connect
        timeout has passed: during a rotation this client may see the new password a little
        before or after the database applies it.
        """
        kwargs.setdefault("timeout", self._settings.connect_timeout)
        deadline = asyncio.get_running_loop().time() + self._settings.connect_timeout
        while True:
            try:
                conn: asyncpg.Connection = await asyncpg.connect(
                    self._settings.current_database_url(), **kwargs
                )
                return conn
            except asyncpg.InvalidPasswordError:
                if asyncio.get_running_loop().time() + AUTH_RETRY_SECONDS > deadline:
                    raise
                log.warning("password refused; reading the URL file again in %.1fs", AUTH_RETRY_SECONDS)
                await asyncio.sleep(AUTH_RETRY_SECONDS)

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            connect=self._connect,
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
        pool = self._require_pool()
        try:
            conn = await pool.acquire(timeout=self._settings.acquire_timeout)
        except TimeoutError:
            # Busy, or PostgreSQL does not answer: only the latter is "unavailable".
            await self.ping()
            raise PoolBusyError(
                f"no pooled connection became free within {self._settings.acquire_timeout:g}s"
            ) from None
        try:
            yield conn
        finally:
            await pool.release(conn)

    async def ping(self) -> str:
        """Open a connection of its own and run ``SELECT 1``, all within the connect timeout;
        raises if PostgreSQL (the application database, with this password) cannot answer,
        except for a refused password while the pool holds connections (a rotation). Returns
        ``ok``, or what the replica serves on when its password is refused.

        Independent of the pool, so a burst that keeps every pooled connection busy does not
        make the replica unready. On failure every pooled connection is expired: after
        PostgreSQL restarts, the pool's idle connections point at the old server, and each
        would otherwise fail one request before the pool replaced it.
        """
        pool = self._require_pool()
        try:
            async with asyncio.timeout(self._settings.connect_timeout + 0.5):
                conn = await self._connect(command_timeout=self._settings.connect_timeout)
                try:
                    await conn.fetchval("SELECT 1")
                finally:
                    await conn.close(timeout=self._settings.connect_timeout)
        except asyncpg.InvalidPasswordError:
            # PostgreSQL answered and refused this password: a rotation under way, while the
            # kubelet has updated this pod's URL file and the database's password file at
            # different times (up to its sync period apart). The server did not restart, so the
            # pool's connections, authenticated before, still serve: keep them, and stay ready
            # while there are any. Without them the replica cannot serve and is not ready.
            if pool.get_size() == 0:
                raise
            state = f"password refused; serving on {pool.get_size()} pooled connection(s)"
            log.warning("%s", state)
            return state
        except Exception:
            await pool.expire_connections()
            raise
        return "ok"

    async def migrate(self) -> list[int]:
        """Apply the pending migrations under the advisory lock; the versions applied here."""
        applied: list[int] = []
        me = socket.gethostname()
        conn = await self._connect(command_timeout=self._settings.migration_timeout)
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
