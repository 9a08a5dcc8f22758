"""Where articles live. In memory here (as the service runs in its DEBUG setup); a
database-backed store would keep the same methods and answer :meth:`available` by pinging
its database, which is what the readiness probe asks."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["draft", "published"]


@dataclass(frozen=True)
class Article:
    id: int
    title: str
    body: str
    status: Status = "draft"
    published_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class ArticleStore:
    """Articles by id; ids count up from 1. Not shared between processes or pods."""

    def __init__(self) -> None:
        self._articles: dict[int, Article] = {}
        self._ids = itertools.count(1)

    async def available(self) -> bool:
        """True when the store can serve reads and writes (always, in memory)."""
        return True

    async def create(self, title: str, body: str) -> Article:
        article = Article(next(self._ids), title, body)
        self._articles[article.id] = article
        return article

    async def get(self, article_id: int) -> Article | None:
        return self._articles.get(article_id)

    async def list(self, status: Status | None = None) -> list[Article]:
        return [a for _, a in sorted(self._articles.items()) if status in (None, a.status)]

    async def publish(self, article_id: int) -> Article | None:
        article = self._articles.get(article_id)
        if article is None or article.status == "published":
            return article
        published = replace(article, status="published", published_at=datetime.now(UTC).isoformat())
        self._articles[article_id] = published
        return published
