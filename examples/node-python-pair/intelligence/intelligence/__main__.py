"""``python -m intelligence``: serve on ``$HOST:$PORT`` (default 8000)."""

from __future__ import annotations

import os

import uvicorn

from .app import create_app


def main() -> None:
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
        port=int(os.environ.get("PORT", "8000")),
        server_header=False,
        timeout_graceful_shutdown=20,  # below the pod's terminationGracePeriodSeconds (30)
    )


if __name__ == "__main__":
    main()
