"""The HTTP app: ``POST /stats`` counts a text; ``/health`` and ``/ready`` for the probes.

The service depends on nothing else, so being ready to serve and being alive are the same
question: both answer as soon as uvicorn accepts connections (after the app's startup).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_BODY_BYTES = 1_000_000
"""Largest text accepted; a bigger body gets 413 rather than tying up a worker."""

WORD = re.compile(r"\w+(?:['’-]\w+)*")


def stats(text: str, top: int = 5) -> dict[str, Any]:
    """Characters, words, lines and the ``top`` most frequent words (lower-cased) of ``text``."""
    words = [w.lower() for w in WORD.findall(text)]
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()),
        "top_words": Counter(words).most_common(top),
    }


async def count(request: Request) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return JSONResponse({"detail": f"text larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return JSONResponse({"detail": "the body is not UTF-8 text"}, status_code=400)
    return JSONResponse(stats(text))


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/stats", count, methods=["POST"]),
            Route("/health", health),
            Route("/ready", health),
        ]
    )
