"""What the rest of feedgate may ask of a store, and the write operations the writer carries.

SQL lives only in ``store/``; everything above speaks this protocol, so the SQLite and PostgreSQL stores
pass the same contract tests. Writes are never issued directly: they are ``WriteOp`` values handed to the
single writer task (``store/writer.py``), which applies a batch of them in one transaction through
``Store.apply``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

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
)


def utc_text(moment: datetime | float | None = None) -> str:
    """The one textual form of a UTC time both stores use, so they compare and sort alike."""
    if moment is None:
        moment = time.time()
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    whole = int(moment)
    micros = min(int((moment - whole) * 1_000_000 + 0.5), 999_999)
    return f"{_utc_second(whole)}.{micros:06d}Z"


@functools.lru_cache(maxsize=16)
def _utc_second(whole: int) -> str:
    # Every logged row is stamped, and rows come many to a second: format each second once.
    t = time.gmtime(whole)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


@dataclass(slots=True)
class InsertRequest:
    """One proxied (or manually logged) exchange; ``values`` follows ``REQUEST_COLUMNS``."""

    values: tuple[Any, ...]
    derived_signals: tuple[str, ...] = ()
    # The gateway minted the ID, so no earlier attempt exists: the store may skip looking for one.
    fresh_id: bool = False

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


DatasetOp = CreateDataset | MutateDataset | DeleteDataset | RecordAlerts
WriteOp = InsertRequest | PutFeedback | PutScores | PutProperty | PutCacheEntry | DropPending | DatasetOp


class StoreUnreachable(Exception):
    """The store could not be opened at start (database down, wrong address, refused login)."""


class Store(Protocol):
    """A place where requests and feedback live. Implementations: SqliteStore, PostgresStore."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer a trivial query."""

    async def applied_migrations(self) -> list[str]: ...

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        """Apply every op in one transaction. Only the writer task calls this."""

    async def request_attempts(self, request_id: str) -> list[dict[str, Any]]:
        """Every logged attempt of one request ID, oldest first, with its feedback and properties."""

    async def requests_exist(self, request_ids: Sequence[str]) -> set[str]:
        """Which of these IDs have at least one logged attempt."""

    async def count_requests(self) -> int: ...

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read-only query written with ``?`` placeholders; each store adapts them to its driver."""

    async def cache_entries(self, key: str, now_utc: str) -> list[CacheEntry]:
        """The unexpired cached answers under ``key`` (``expires_utc > now_utc``), by slot."""
