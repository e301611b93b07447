"""The single write path: a bounded queue and one task that applies it in batches.

The proxy puts finished exchanges here with ``log()`` and never waits: the queue is bounded, and when it
is full the record is dropped and counted, because a client's answer matters more than its log row. The
feedback API uses ``submit()``, which waits for the commit, so a 201 means the rating is stored.

Turning an exchange into a row (parsing bodies, reassembling streams, pricing: ``logrows/``, passed in as
``build_row``) happens here, batch by batch, after the client already has its answer. If the store fails,
the batch is kept and retried with back-off while new records wait in the queue; nothing is dropped
silently. A record whose content the store refuses (``RowRejected``) is dropped alone and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from feedgate.errors import RowRejected
from feedgate.store.ops import InsertRequest, WriteOp
from feedgate.store.protocol import Store

log = logging.getLogger("feedgate.writer")


class Logged(Protocol):
    """What the writer needs to know of a logged exchange before it builds its row."""

    @property
    def request_id(self) -> str: ...


Record = TypeVar("Record", bound=Logged)


@dataclass(slots=True)
class _Submitted:
    op: WriteOp | list[WriteOp]
    done: asyncio.Future[None]


@dataclass
class WriterStats:
    written: int = 0
    dropped_queue_full: int = 0
    dropped_store_error: int = 0
    derive_errors: int = 0
    store_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_store_error": self.dropped_store_error,
            "derive_errors": self.derive_errors,
            "store_errors": self.store_errors,
            "last_error": self.last_error,
        }


class Writer(Generic[Record]):
    """Owns every write to the store. ``build_row`` turns a logged record (an exchange) into an ``InsertRequest``."""

    def __init__(
        self,
        store: Store,
        build_row: Callable[[Record], InsertRequest],
        *,
        queue_size: int = 50_000,
        batch_max: int = 1000,
        batch_wait_s: float = 0.0,
        retry_max_s: float = 5.0,
        on_dropped: Callable[[Record], None] | None = None,
        on_batch: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.build_row = build_row
        # Observers set by app.py (metrics, traces): a record dropped on a full queue, seconds per batch.
        self.on_dropped = on_dropped
        self.on_batch = on_batch
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        # Set when a caller is waiting for its write: the writer stops gathering and writes at once.
        self._urgent = asyncio.Event()
        self.retry_max_s = retry_max_s
        self.queue: asyncio.Queue[Record | _Submitted | None] = asyncio.Queue(maxsize=queue_size)
        self.stats = WriterStats()
        # Request IDs accepted but not yet committed: feedback for them is "stored", not "pending".
        self.queued_ids: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_drop_log = 0.0

    def log(self, record: Record) -> bool:
        """Queue a record for logging without waiting. False (and counted) if the queue is full."""
        request_id = record.request_id
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            if self.on_dropped is not None:
                self.on_dropped(record)
            now = time.monotonic()
            if now - self._last_drop_log > 5:
                self._last_drop_log = now
                log.error(
                    "log queue full (%d records): dropped request %s; %d dropped so far",
                    self.queue.maxsize,
                    request_id,
                    self.stats.dropped_queue_full,
                )
            return False
        self.queued_ids[request_id] += 1
        return True

    def put(self, op: WriteOp) -> bool:
        """Queue a write without waiting for it (a cache entry from the proxy). False if the queue is full."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody awaits this future: retrieve its outcome so a failed write is not reported as unretrieved.
        done.add_done_callback(lambda future: future.cancelled() or future.exception())
        try:
            self.queue.put_nowait(_Submitted(op, done))
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            return False
        return True

    async def submit(self, op: WriteOp | list[WriteOp], timeout: float = 10.0) -> None:
        """Queue a write (or several, committed together) and wait until it is committed.

        Raises TimeoutError when the store does not take it in time, or the store's own error.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(self.queue.put(_Submitted(op, done)), timeout)
        self._urgent.set()
        await asyncio.wait_for(asyncio.shield(done), timeout)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record queued before this call is committed (or dropped and counted).

        Batches are applied in queue order, so an empty write queued now is done only after them.
        """
        await self.submit([], timeout)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feedgate-writer")

    async def stop(self, timeout: float = 60.0) -> None:
        """Write everything queued, then end. Records still unwritten after ``timeout`` are counted."""
        self._stopping = True
        self._urgent.set()
        self.queue.put_nowait(None) if not self.queue.full() else None
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                left = self.queue.qsize()
                self.stats.dropped_store_error += left
                log.error("shutdown: %d log records could not be written in %.0fs", left, timeout)

    async def _run(self) -> None:
        while True:
            first = await self.queue.get()
            if self.batch_wait_s > 0 and first is not None and not isinstance(first, _Submitted):
                await self._gather_more()
            batch = [first] if first is not None else []
            while len(batch) < self.batch_max:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is not None:
                    batch.append(item)
            if batch:
                await self._write(batch)
            if self._stopping and self.queue.empty():
                return

    async def _gather_more(self) -> None:
        """Let log rows accumulate for a moment: every transaction has a fixed cost, so fewer and larger
        batches cost less CPU per row. A waiting caller (feedback) or a full batch ends the wait."""
        if self._stopping or self._urgent.is_set() or self.queue.qsize() >= self.batch_max:
            self._urgent.clear()
            return
        try:
            await asyncio.wait_for(self._urgent.wait(), self.batch_wait_s)
        except TimeoutError:
            pass
        self._urgent.clear()

    async def _write(self, batch: list[Record | _Submitted]) -> None:
        started = time.perf_counter()
        await self._write_batch(batch)
        if self.on_batch is not None:
            self.on_batch(time.perf_counter() - started)

    async def _write_batch(self, batch: list[Record | _Submitted]) -> None:
        # Each group is applied whole or not at all: one exchange's row, or one submitted set of ops.
        groups: list[tuple[list[WriteOp], asyncio.Future[None] | None]] = []
        logged_ids: list[str] = []
        for item in batch:
            if isinstance(item, _Submitted):
                groups.append((list(item.op) if isinstance(item.op, list) else [item.op], item.done))
                continue
            logged_ids.append(item.request_id)
            try:
                groups.append(([self.build_row(item)], None))
            except Exception:
                self.stats.derive_errors += 1
                log.exception("could not build the log row for request %s", item.request_id)
        ops = [op for group, _ in groups for op in group]
        if ops:
            await self._apply(groups, ops)
        else:
            self._done(groups, None)  # a flush() marker, or records whose rows could not be built
        for request_id in logged_ids:
            left = self.queued_ids[request_id] - 1
            if left > 0:
                self.queued_ids[request_id] = left
            else:
                del self.queued_ids[request_id]

    async def _apply(self, groups: list[tuple[list[WriteOp], asyncio.Future[None] | None]], ops: list[WriteOp]) -> None:
        """Apply a batch, retrying with back-off while the store is unavailable."""
        delay = 0.05
        while True:
            try:
                await self.store.apply(ops)
                self._done(groups, None)
                break
            except Exception as exc:
                self.stats.store_errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                self.stats.last_error_at = time.time()
                if isinstance(exc, RowRejected):
                    # Retrying cannot fix a bad row: apply each record alone, so only the bad one is dropped
                    # (and counted) instead of blocking every record queued behind it.
                    await self._write_groups_apart(groups)
                    break
                if self._stopping and delay >= self.retry_max_s:
                    log.error("store failed while stopping, %d records lost: %s", len(ops), exc)
                    self._done(groups, exc)
                    break
                log.warning("store write failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def _done(self, groups: list[tuple[list[WriteOp], asyncio.Future[None] | None]], exc: Exception | None) -> None:
        for ops, waiter in groups:
            rows = sum(1 for op in ops if isinstance(op, InsertRequest))
            if exc is None:
                self.stats.written += rows
            else:
                self.stats.dropped_store_error += rows
            if waiter is not None and not waiter.done():
                waiter.set_result(None) if exc is None else waiter.set_exception(exc)

    async def _write_groups_apart(self, groups: list[tuple[list[WriteOp], asyncio.Future[None] | None]]) -> None:
        """A batch with one bad row must not sink the good ones: apply each group alone to isolate it."""
        for group in groups:
            try:
                await self.store.apply(group[0])
            except Exception as exc:
                log.error("dropped an unwritable record: %s", exc)
                self._done([group], exc)
                continue
            self._done([group], None)
