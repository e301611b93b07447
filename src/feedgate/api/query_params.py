"""The query strings of feedgate's own routes, as pydantic models, for the OpenAPI document (``openapi.py``).

The routes read their query strings with ``analysis/selection.py`` (shared with the commands' flags), not
with these models; ``tests/test_openapi.py`` sends every documented parameter's example to a gateway, so
a parameter documented here that a route does not take fails there.

``property.NAME`` and ``min_score.NAME`` are named by the caller, so no field can name them: the
document describes them as one free-form ``filters`` parameter (``SELECTION_PATTERNS``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The same values as analysis' FORMATS and RATINGS: tests/test_openapi.py holds them together.
Format = Literal["openai-chat", "openai-preference", "few-shot", "jsonl"]
Rating = Literal["positive", "negative", "unrated"]
_TIME = "ISO 8601 (2025-07-01, 2025-07-01T12:00:00Z; naive is UTC, years 1 to 9999) or back from now: 30d, 12h, 2w, 90m"
_DIMENSION = r"^(model|user|prompt|path|day|week|property:[A-Za-z0-9_.:\-]{1,128})$"
SELECTION_PATTERNS = {
    r"^property\.[A-Za-z0-9_.:\-]{1,128}$": {"type": "string", "description": "the property equals this value"},
    r"^min_score\.[A-Za-z0-9_.:\-]{1,128}$": {"type": "string", "description": "the score is at least this number"},
}


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SelectionQuery(_Query):
    """The simple filters every analysis route takes (docs/analysis.md#filters)."""

    model: str | None = Field(None, description="exact model name", examples=["gpt-4o-mini"])
    user: str | None = Field(None, description="Helicone-User-Id (or the body's user)", examples=["u42"])
    session: str | None = Field(None, description="Helicone-Session-Id", examples=["ticket-4711"])
    path: str | None = Field(None, description="request path", examples=["/v1/chat/completions"])
    prompt: str | None = Field(None, description="prompt key: Helicone-Prompt-Id or a fingerprint", examples=["faq"])
    since: str | None = Field(None, description=f"from this time: {_TIME}", examples=["30d"])
    until: str | None = Field(None, description=f"before this time: {_TIME}", examples=["2030-01-01"])
    rating: Rating | None = Field(None, description="explicit rating", examples=["negative"])


class StatsQuery(SelectionQuery):
    group_by: str = Field("model", pattern=_DIMENSION, description="what to group by", examples=["property:feature"])


class InsightsQuery(SelectionQuery):
    by: list[str] = Field(default_factory=list, description="dimensions to search (repeat)", examples=[["model"]])
    min_ratings: int = Field(10, ge=1, le=10**9, description="ratings a group needs", examples=[5])
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level", examples=[0.05])
    examples: int = Field(3, ge=0, le=20, description="negative examples per insight", examples=[2])


class RegressionsQuery(SelectionQuery):
    by: list[str] = Field(default_factory=list, description="dimensions to compare (repeat)", examples=[["model"]])
    min_ratings: int = Field(10, ge=1, le=10**9, description="ratings each window needs", examples=[5])
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level", examples=[0.01])
    recent_days: float = Field(7, gt=0, le=3650, description="length of the recent window", examples=[7])
    baseline_days: float = Field(28, gt=0, le=3650, description="length of the baseline before it", examples=[28])
    signal: list[str] = Field(
        default_factory=list, description="negative signals to watch (repeat)", examples=[["regenerated"]]
    )
    notify: Literal["true", "false"] = Field(
        "true", description="POST new regressions to analysis.webhook_url", examples=["false"]
    )


class ExportPart(_Query):
    format: Format = Field(description="line format", examples=["openai-chat"])
    split: float | None = Field(
        None, gt=0, lt=1, description="training share of a train/validation split", examples=[0.9]
    )
    seed: int = Field(0, ge=-(2**63), le=2**63 - 1, description="seed of the split", examples=[1])
    part: Literal["train", "validation"] = Field("train", description="which side of the split", examples=["train"])


class ExportQuery(SelectionQuery, ExportPart):
    """``GET /v1/export``: the simple filters choose the rows, the rest how they are written."""


class ScoreNamesQuery(_Query):
    name: list[str] = Field(default_factory=list, description="a score to remove (repeat)", examples=[["stars"]])
