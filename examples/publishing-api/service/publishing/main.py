"""The HTTP app: articles under ``/articles``; ``/health`` and ``/ready`` for the probes.

``/health`` (liveness) answers while the process serves requests; ``/ready`` (readiness)
also asks the article store, so a pod whose store is unavailable leaves the Service's
endpoints without being restarted.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .store import ArticleStore

MAX_TITLE = 200


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _article_id(request: Request) -> int:
    value: int = request.path_params["article_id"]
    return value


def create_app(store: ArticleStore | None = None) -> Starlette:
    articles = store or ArticleStore()

    async def list_articles(request: Request) -> JSONResponse:
        status = request.query_params.get("status")
        if status not in (None, "draft", "published"):
            return _error(422, "status must be draft or published")
        found = await articles.list(status)  # type: ignore[arg-type]
        return JSONResponse([a.as_json() for a in found])

    async def create_article(request: Request) -> JSONResponse:
        try:
            data: Any = json.loads(await request.body())
        except ValueError:
            return _error(400, "the body is not JSON")
        title, body = (data.get("title"), data.get("body", "")) if isinstance(data, dict) else (None, None)
        if not isinstance(title, str) or not 0 < len(title.strip()) <= MAX_TITLE:
            return _error(422, f"title must be a non-empty string of at most {MAX_TITLE} characters")
        if not isinstance(body, str):
            return _error(422, "body must be a string")
        article = await articles.create(title.strip(), body)
        return JSONResponse(article.as_json(), status_code=201)

    async def get_article(request: Request) -> JSONResponse:
        article = await articles.get(_article_id(request))
        return JSONResponse(article.as_json()) if article else _error(404, "no such article")

    async def publish_article(request: Request) -> JSONResponse:
        article = await articles.publish(_article_id(request))
        return JSONResponse(article.as_json()) if article else _error(404, "no such article")

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> JSONResponse:
        if await articles.available():
            return JSONResponse({"status": "ready", "store": "ok"})
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)

    return Starlette(
        routes=[
            Route("/articles", list_articles, methods=["GET"]),
            Route("/articles", create_article, methods=["POST"]),
            Route("/articles/{article_id:int}", get_article, methods=["GET"]),
            Route("/articles/{article_id:int}/publish", publish_article, methods=["POST"]),
            Route("/health", health),
            Route("/ready", ready),
        ]
    )


app = create_app()
"""The app uvicorn serves (``publishing.main:app``)."""
