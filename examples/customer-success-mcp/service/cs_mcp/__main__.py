"""``python -m cs_mcp``: serve MCP over streamable HTTP on ``$HOST:$PORT`` (default 8080)."""

from __future__ import annotations

import os

import uvicorn

from .server import create_app

GRACEFUL_SHUTDOWN_SECONDS = 20
"""In-flight calls get this long after SIGTERM; below the pod's terminationGracePeriodSeconds (30)."""


def main() -> None:
    host = os.environ.get("HOST", "0.0.0.0")  # a container listens on all interfaces
    uvicorn.run(
        create_app(host),
        host=host,
        port=int(os.environ.get("PORT", "8080")),
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
