"""Runtime settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "postgresql://store-inventory-postgresql:5432/store_db"
"""The in-cluster PostgreSQL Service. User and password come from ``PGUSER``/``PGPASSWORD``
(asyncpg reads them), so no credential is a default. In a cluster the URL is a file of a Secret
volume named by ``DATABASE_URL_FILE``."""


def secret(name: str) -> str | None:
    """A secret from the file named by ``<name>_FILE`` (a mounted Secret), else from ``name``.

    In a cluster only the file is used: the Deployment mounts the Secret read-only and sets
    the path. The variable itself is for local runs. Surrounding whitespace (a trailing
    newline of a hand-written file) is dropped.
    """
    path = os.environ.get(f"{name}_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return os.environ.get(name) or None


@dataclass(frozen=True)
class Settings:
    database_url: str
    """The URL as read at start; :meth:`current_database_url` is what each new connection uses."""
    host: str
    port: int
    pool_max_size: int
    connect_timeout: float
    """Seconds to connect (and for the readiness ``SELECT 1``); kept below the readiness
    probe's ``timeoutSeconds`` (2) so a dead database fails the probe instead of timing it out."""
    command_timeout: float
    migration_timeout: float
    acquire_timeout: float = 5.0
    """Seconds a request waits for a pooled connection when every one is busy (default 5);
    a burst larger than the pool queues this long instead of failing."""
    retry_after_seconds: int = 2
    """``Retry-After`` of a 503 answered because PostgreSQL is unreachable (default 2)."""
    database_url_file: str | None = None
    """The mounted Secret file the URL is read from; read again for every new connection, so a
    rotated password is used as soon as the kubelet has updated the file."""

    def current_database_url(self) -> str:
        """The URL in :attr:`database_url_file` as it is now, else the one read at start."""
        if self.database_url_file:
            try:
                with open(self.database_url_file, encoding="utf-8") as f:
                    return f.read().strip() or self.database_url
            except OSError:
                return self.database_url
        return self.database_url

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=secret("DATABASE_URL") or DEFAULT_DATABASE_URL,
            host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
            port=int(os.environ.get("PORT", "8000")),
            pool_max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "10")),
            connect_timeout=float(os.environ.get("DB_CONNECT_TIMEOUT", "1")),
            command_timeout=float(os.environ.get("DB_COMMAND_TIMEOUT", "10")),
            migration_timeout=float(os.environ.get("DB_MIGRATION_TIMEOUT", "60")),
            acquire_timeout=float(os.environ.get("DB_ACQUIRE_TIMEOUT", "5")),
            retry_after_seconds=int(os.environ.get("DB_RETRY_AFTER", "2")),
            database_url_file=os.environ.get("DATABASE_URL_FILE") or None,
        )
