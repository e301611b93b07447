"""One operation of feedgate's own API as the OpenAPI document describes it (``openapi.py`` builds it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    tag: str
    summary: str
    answer: Any  # the type of the answer's data (of the whole answer when not enveloped); None: null
    answer_example: Any
    status: int = 200
    body: type[BaseModel] | None = None
    body_example: Any = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    filters: bool = False  # also takes property.NAME and min_score.NAME
    enveloped: bool = True  # Helicone's {"data", "error"}
    public: bool = False  # answered without a feedgate key
    media: str = "application/json"  # another is text: JSON lines, Prometheus' format
    pending: bool = False  # may answer 202 pending: the request ID is not known yet
    token: bool = False  # also takes a feedback token for its ID (docs/feedback-tokens.md)
