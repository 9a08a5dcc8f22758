"""``python -m mcp_server``: serve MCP over streamable HTTP on ``$HOST:$PORT`` (default 8080)."""

from __future__ import annotations

import logging
import os

import uvicorn

from .server import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
        port=int(os.environ.get("PORT", "8080")),
        server_header=False,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
