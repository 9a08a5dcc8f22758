"""Field docstrings of an Args ``TypedDict``, read from its source as the SDK's analyzer reads them."""

from __future__ import annotations

import ast
import inspect


def field_docs(cls: type) -> dict[str, str | None]:
    """Each annotated field of ``cls`` and the string literal right after it (None if none)."""
    (node,) = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls))).body
    assert isinstance(node, ast.ClassDef)
    docs: dict[str, str | None] = {}
    body = node.body
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            after = body[i + 1] if i + 1 < len(body) else None
            doc = None
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                doc = after.value.value if isinstance(after.value.value, str) else None
            docs[stmt.target.id] = doc
    return docs
