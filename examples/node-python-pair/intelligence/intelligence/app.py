"""The HTTP app: ``POST /analyze`` with ``{"text": ...}``; ``/health`` and ``/ready``.

The service depends on nothing else, so readiness and liveness ask the same question: both
answer as soon as uvicorn accepts connections.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .analysis import analyze

MAX_TEXT = 100_000


async def analyze_text(request: Request) -> JSONResponse:
    try:
        data: Any = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        return JSONResponse(
            {"detail": f"text must be a non-empty string of at most {MAX_TEXT} characters"}, status_code=422
        )
    return JSONResponse(analyze(text))


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/analyze", analyze_text, methods=["POST"]),
            Route("/health", health),
            Route("/ready", health),
        ]
    )
