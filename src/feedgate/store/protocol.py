"""The one thing the rest of feedgate asks of a store: ``Store``, which SqliteStore and PostgresStore implement.

SQL lives only in ``store/``. The reads that are the same in both stores are written once, as functions in
``store/reads/`` over this protocol's ``dialect``, ``fetch``, ``query`` and ``stream``; the methods here are
what each store does its own way. Writes are ``WriteOp`` values applied by the single writer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Protocol

from feedgate.store.dialect import Dialect
from feedgate.store.ops import CacheEntry, WriteOp


class Store(Protocol):
    """A place where requests and feedback live. Implementations: SqliteStore, PostgresStore.

    Both subclass this protocol, so mypy checks each against every method here.
    """

    dialect: Dialect

    async def open(self) -> None:
        """Connect and apply pending migrations; ``StoreUnreachable`` when the database cannot be used."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer a trivial query."""
        ...

    async def applied_migrations(self) -> list[str]: ...

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        """Apply every op in one transaction; ``RowRejected`` when a record's content is refused.

        Only the writer task calls this.
        """
        ...

    async def request_attempts(self, request_id: str) -> list[dict[str, Any]]:
        """Every logged attempt of one request ID, oldest first."""
        ...

    async def requests_exist(self, request_ids: Sequence[str]) -> set[str]:
        """Which of these IDs have at least one logged attempt."""
        ...

    async def count_requests(self) -> int: ...

    async def cache_entries(self, key: str, now_utc: str) -> list[CacheEntry]:
        """The unexpired cached answers under ``key`` (``expires_utc > now_utc``), by slot."""
        ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as tuples of a read-only query written with ``?`` placeholders.

        Safe to call concurrently: each call may use a read connection of its own.
        """
        ...

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts of a read-only query written with ``?`` placeholders."""
        ...

    def stream(
        self, sql: str, params: Sequence[Any] = (), batch: int = 500
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Rows in batches of ``batch`` from a connection of their own, so memory holds one batch."""
        ...
