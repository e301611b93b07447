"""The writes a store applies: one value per kind, handed to the single writer task (``writer.py``).

Writes are never issued directly: the writer applies a batch of these in one transaction through
``Store.apply``. ``InsertRequest.values`` follows ``REQUEST_COLUMNS``, the ``requests`` table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedgate.store.utc import utc_text

REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id",
    "datetime_utc",
    "provider",
    "method",
    "path",
    "query",
    "target_url",
    "model",
    "is_stream",
    "status",
    "duration_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "user_id",
    "session_id",
    "session_path",
    "session_name",
    "prompt_id",
    "prompt_fingerprint",
    "messages_fingerprint",
    "properties_json",
    "request_headers_json",
    "request_body",
    "response_headers_json",
    "response_body",
    "response_json",
    "response_text",
    "finish_reason",
    "upstream_request_id",
    "error_type",
    "error_message",
    "cache_reference_id",
    "body_bytes",
    "request_model",
    "response_model",
    "api",
    "response_id",
    "previous_response_id",
    "reasoning_tokens",
    "trace_id",
    "span_id",
    "request_body_encoding",
    "response_body_encoding",
)


@dataclass(slots=True)
class InsertRequest:
    """One proxied (or manually logged) exchange; ``values`` follows ``REQUEST_COLUMNS``."""

    values: tuple[Any, ...]
    derived_signals: tuple[str, ...] = ()
    # The gateway minted the ID, so no earlier attempt exists: the store may skip looking for one.
    fresh_id: bool = False
    # Why the answer's body could not be logged whole: "undecodable" or "truncated" (the writer counts them).
    answer_problem: str | None = None

    @property
    def request_id(self) -> str:
        return str(self.values[0])


@dataclass(slots=True)
class PutFeedback:
    """An explicit rating (``rating`` None clears it) or an implicit signal for a request or session."""

    target_type: str
    target_id: str
    kind: str
    rating: bool | None
    signal: str | None = None
    comment: str | None = None
    user_id: str | None = None
    metadata_json: str | None = None
    source: str = "api"
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class PutScores:
    request_id: str
    scores: dict[str, tuple[float, str]]
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class DeleteScores:
    """Remove a request's scores: those named, or (``names`` None) all of them. Unknown names change nothing."""

    request_id: str
    names: tuple[str, ...] | None = None


@dataclass(slots=True)
class PutProperty:
    request_id: str
    key: str
    value: str
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class PutCacheEntry:
    """One answer kept for ``Helicone-Cache-Enabled``: slot ``slot`` of the bucket under ``key``.

    ``body`` is the upstream's bytes (SSE bytes for a stream); ``headers_json`` a JSON list of
    ``[name, value]`` pairs to replay. Applying it also deletes entries expired by ``created_utc``.
    """

    key: str
    slot: int
    request_id: str
    status: int
    headers_json: str
    body: bytes
    is_stream: bool
    created_utc: str
    expires_utc: str


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached answer as ``Store.cache_entries`` reads it back."""

    slot: int
    request_id: str
    status: int
    headers_json: str
    body: bytes
    is_stream: bool


@dataclass(slots=True)
class DropPending:
    """Forget feedback, scores and properties noted for these IDs, unless their request has since landed."""

    request_ids: list[str]


@dataclass(slots=True)
class CreateDataset:
    """A dataset: Helicone's list of request IDs, or (``filter_tree`` set) a snapshot of a filter's matches.

    The tree is Helicone's filter JSON, compiled by each store in its own dialect (``store/datasets.py``).
    """

    dataset_id: str
    name: str
    origin: str  # "helicone" or "filter"
    request_ids: list[str] = field(default_factory=list)
    filter_tree: Any = None
    meta_json: str | None = None
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class MutateDataset:
    dataset_id: str
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class DeleteDataset:
    """Soft delete, as Helicone does: the dataset disappears from lists and reads; its rows stay."""

    dataset_id: str
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class RecordAlerts:
    """Regressions whose webhook was sent: ``(fingerprint, dimension, key, metric, payload_json)`` each."""

    alerts: list[tuple[str, str, str, str, str]]
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class RecordRun:
    """This process's run in ``feedgate_runs``: started, still alive (``seen_utc``), or stopped cleanly."""

    run_id: str
    host: str
    pid: int
    started_utc: str
    seen_utc: str
    stopped_utc: str | None = None


@dataclass(slots=True)
class ReportRuns:
    """Runs found stopped uncleanly, now reported, so no later start reports them again."""

    run_ids: list[str]
    reported_utc: str


@dataclass(slots=True)
class OpenConsoleSession:
    """A console login: the session's hashed token, the key it was opened with, and when it ends at the latest.

    Applying it also deletes sessions whose absolute expiry has passed, so the table stays small.
    """

    session_hash: str
    key_id: str
    expires_utc: str
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class TouchConsoleSession:
    """The session was used now: its idle expiry counts from here."""

    session_hash: str
    datetime_utc: str = field(default_factory=utc_text)


@dataclass(slots=True)
class CloseConsoleSession:
    """Log out: the session is deleted."""

    session_hash: str


@dataclass(slots=True)
class Pruned:
    """What one ``PruneBefore`` deleted, table by table, set by the store when it applies the op."""

    requests: int = 0
    feedback_events: int = 0
    feedback: int = 0
    scores: int = 0
    request_properties: int = 0
    # The time of the newest request this batch deleted: the next batch starts there (rows kept for a
    # dataset are not walked again). None when the batch found nothing left to delete.
    last_utc: str | None = None


@dataclass(slots=True)
class PruneBefore:
    """Delete up to ``limit`` logged requests older than ``before_utc`` (from ``from_utc`` on), oldest first.

    With them go their feedback, scores and properties (for request IDs that no row is left for). Requests
    in a live dataset are kept. Applying it fills ``result``.
    """

    before_utc: str
    limit: int = 2000
    from_utc: str = ""
    result: Pruned = field(default_factory=Pruned)


@dataclass(slots=True)
class ReclaimSpace:
    """SQLite: give up to ``pages`` free pages back to the file system (incremental vacuum), after the
    batch's transaction. PostgreSQL: nothing (autovacuum). The store sets ``freed`` to the pages it gave back."""

    pages: int = 2000
    freed: int = 0


ConsoleSessionOp = OpenConsoleSession | TouchConsoleSession | CloseConsoleSession
DatasetOp = CreateDataset | MutateDataset | DeleteDataset | RecordAlerts
RunOp = RecordRun | ReportRuns


@dataclass(slots=True)
class RebuildRollups:
    """Recompute the rollups of the hours from ``from_utc`` to ``until_utc`` (hour starts) from the rows."""

    from_utc: str
    until_utc: str


@dataclass(slots=True)
class SetRollupCoverage:
    """Every rolled-up dimension's sums are complete from the hour ``from_utc`` ('' for all hours) on."""

    from_utc: str


@dataclass(slots=True)
class RegisterRollups:
    """Applied when a store opens: note the dimensions it keeps (or, with rollups off, withdraw them all)."""


RollupOp = RebuildRollups | SetRollupCoverage | RegisterRollups

RetentionOp = PruneBefore | ReclaimSpace
WriteOp = (
    InsertRequest
    | PutFeedback
    | PutScores
    | DeleteScores
    | PutProperty
    | PutCacheEntry
    | DropPending
    | DatasetOp
    | RunOp
    | ConsoleSessionOp
    | RollupOp
    | RetentionOp
)
