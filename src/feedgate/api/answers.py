"""What feedgate's own routes answer, as pydantic models, for the OpenAPI document (``openapi.py``).

The handlers build plain dicts (the analysis answers are shared with the commands); these models
describe them. Each names the fields a client relies on and allows more (``extra="allow"``), so a field
added to an answer never makes the document wrong. The document's examples are validated against these
schemas, and ``tests/test_openapi.py`` also checks them against real answers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feedgate.api.fields import ScoreValue


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Pending(_Open):
    """202: stored, waiting for a request with this ID to be logged."""

    status: Literal["pending"]


class FeedbackEvent(_Open):
    rating: bool | None
    comment: str | None
    user_id: str | None
    metadata: dict[str, Any] | None
    source: str
    datetime_utc: str


class SignalEvent(FeedbackEvent):
    signal: str


class FeedbackState(_Open):
    """The current explicit rating, its history, implicit signals and (for a request) scores."""

    rating: bool | None
    comment: str | None
    user_id: str | None
    metadata: dict[str, Any] | None
    datetime_utc: str | None
    history: list[FeedbackEvent]
    signals: list[SignalEvent]
    scores: dict[str, ScoreValue] | None = None
    request_known: bool | None = Field(None, description="requests only: feedgate has seen this request ID")
    requests: int | None = Field(None, description="sessions only: request IDs carrying this session ID")


class BatchResult(_Open):
    requestId: str  # noqa: N815 (Helicone's names)
    status: Literal["stored", "pending", "invalid"]
    error: str | None = None


class BatchResults(_Open):
    results: list[BatchResult]


class TokensMinted(_Open):
    """Feedback tokens by ID, what they allow, and when they expire (all at the same time)."""

    request_tokens: dict[str, str]
    session_tokens: dict[str, str]
    allow: list[Literal["feedback", "score", "signal"]]
    expires_at: str


class LegacyAnswer(_Open):
    """Helicone's legacy route answers without the envelope."""

    message: str
    helicone_id: str


class LoggedRequest(_Open):
    """One logged request in Helicone's ``HeliconeRequest`` names, plus feedgate's own fields."""

    request_id: str
    request_created_at: str
    response_status: int | None
    model: str | None
    provider: str
    request_path: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    delay_ms: float | None
    cost: float | None
    properties: dict[str, Any]
    feedback_rating: bool | None
    scores: dict[str, ScoreValue]
    attempts: int


class LogAccepted(_Open):
    request_id: str


class StatsReport(_Open):
    group_by: str
    filters: dict[str, Any]
    groups: list[dict[str, Any]]
    overall: dict[str, Any]
    source: Literal["rollup", "rows"] = Field(
        description="rollup: whole hours read from the per-hour rollups (partial hours at the edges of the range "
        "from rows); rows: every figure counted from the logged rows (a filter the rollups cannot answer, or "
        "analysis.rollups off). Same numbers either way; latency percentiles from rollups are within 4.4%."
    )


class InsightsReport(_Open):
    filters: dict[str, Any]
    dimensions: list[str]
    min_ratings: int
    alpha: float
    overall: dict[str, Any]
    insights: list[dict[str, Any]]
    source: Literal["rollup", "rows"] = Field(
        description="rollup: whole hours read from the per-hour rollups (partial hours at the edges of the range "
        "from rows); rows: every figure counted from the logged rows (a filter the rollups cannot answer, or "
        "analysis.rollups off). Same numbers either way; latency percentiles from rollups are within 4.4%."
    )


class Window(_Open):
    from_: str = Field(alias="from")
    to: str


class RegressionsReport(_Open):
    filters: dict[str, Any]
    dimensions: list[str]
    baseline: Window
    recent: Window
    min_ratings: int
    alpha: float
    signals: list[str]
    regressions: list[dict[str, Any]]
    source: Literal["rollup", "rows"] = Field(
        description="rollup: whole hours read from the per-hour rollups (partial hours at the edges of the range "
        "from rows); rows: every figure counted from the logged rows (a filter the rollups cannot answer, or "
        "analysis.rollups off). Same numbers either way; latency percentiles from rollups are within 4.4%."
    )
    webhook: dict[str, Any] | None = Field(None, description="present when a webhook was called")


class DatasetCreated(_Open):
    datasetId: str  # noqa: N815


class Dataset(_Open):
    id: str
    name: str
    created_at: str
    meta: dict[str, Any] | None
    organization: None
    dataset_type: Literal["helicone", "feedgate-filter"]
    filter: Any
    requests_count: int


class DatasetSnapshot(Dataset):
    datasetId: str  # noqa: N815


class DatasetItem(_Open):
    id: int
    origin_request_id: str
    dataset_id: str
    created_at: str
    signed_url: str


class Health(_Open):
    status: str


class Readiness(_Open):
    """The store answers and its migrations are applied (``ready``), or why not; the writer's counters."""

    status: str
    error: str | None = None
