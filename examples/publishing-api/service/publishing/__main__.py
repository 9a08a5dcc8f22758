"""``python -m publishing``: serve ``publishing.main:app`` on ``$HOST:$PORT`` (default 8080).

One worker process per container: the HorizontalPodAutoscaler adds pods for load, and each
pod's CPU request then matches what its one process uses (the seed's ``--workers 4`` would
share a pod's CPU limit among four processes the autoscaler cannot see apart).
"""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "publishing.main:app",
        host=os.environ.get("HOST", "0.0.0.0"),  # a container listens on all interfaces
        port=int(os.environ.get("PORT", "8080")),
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        server_header=False,
        timeout_graceful_shutdown=20,  # below the pod's terminationGracePeriodSeconds (30)
    )


if __name__ == "__main__":
    main()
