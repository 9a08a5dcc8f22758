"""The base of every configuration model: strict, immutable, camelCase in the stack file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class StrictModel(BaseModel):
    """Unknown keys are errors, instances are frozen, keys are camelCase (snake_case in Python)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )
