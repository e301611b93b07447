"""The single write path: a bounded queue and one task that applies it in batches.

The proxy puts finished exchanges here with ``log()`` and never waits: the queue is bounded by records and
by bytes, and when it is full the record is dropped and counted, because a client's answer matters more
than its log row. The feedback API uses ``submit()``, which waits for the commit, so a 201 means the rating
is stored; a write the store does not take in time is withdrawn, so the caller's 503 means "not stored".

Turning an exchange into a row (parsing bodies, reassembling streams, pricing: ``logrows/``, passed in as
``build_row``) happens here, batch by batch, after the client already has its answer. If the store fails,
the batch is kept and retried, in smaller and smaller parts (a nearly full disk may take a small write
when it cannot take a large one), with back-off while new records wait in the queue; nothing is dropped
silently. A record whose content the store refuses (``RowRejected``) is dropped alone and counted.

With a spool (``database.spool``), every logged record is also appended to a local file before it is
queued, and forgotten once committed, so records a crash would lose are written on the next start.
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
from feedgate.store.spool import Spool

log = logging.getLogger("feedgate.writer")


class Logged(Protocol):
    """What the writer needs to know of a logged exchange before it builds its row."""

    @property
    def request_id(self) -> str: ...

    def held_bytes(self) -> int:
        """About how much memory the record holds while it waits (its bodies)."""
        ...


Record = TypeVar("Record", bound=Logged)
Waiter = asyncio.Future[None]
Group = tuple[list[WriteOp], Waiter | None]  # applied whole or not at all: one row, or one submitted set


@dataclass(slots=True)
class _Submitted:
    op: WriteOp | list[WriteOp]
    done: Waiter
    put_only: bool = False  # queued by put(): nobody waits for it


@dataclass
class WriterStats:
    written: int = 0
    dropped_queue_full: int = 0
    dropped_store_error: int = 0
    dropped_build_error: int = 0  # exchanges whose row could not be built (a bug: the log says which)
    # Rows whose answer could not be decoded for the log (an unknown encoding, a corrupt body), and rows whose
    # decoded answer was cut at the size cap.
    undecodable_answers: int = 0
    truncated_answers: int = 0
    store_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    # Set while the store refuses writes, cleared by the next write it takes: /readyz reports it.
    failing_since: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_store_error": self.dropped_store_error,
            "dropped_build_error": self.dropped_build_error,
            "undecodable_answers": self.undecodable_answers,
            "truncated_answers": self.truncated_answers,
            "store_errors": self.store_errors,
            "last_error": self.last_error,
            "failing_since": self.failing_since,
        }


class Writer(Generic[Record]):
    """Owns every write to the store. ``build_row`` turns a logged record (an exchange) into an ``InsertRequest``."""

    def __init__(
        self,
        store: Store,
        build_row: Callable[[Record], InsertRequest],
        *,
        queue_size: int = 50_000,
        queue_max_bytes: int = 256 * 1024 * 1024,
        batch_max: int = 1000,
        batch_wait_s: float = 0.0,
        retry_max_s: float = 5.0,
        spool: Spool[Record] | None = None,
        on_dropped: Callable[[Record], None] | None = None,
        on_batch: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.build_row = build_row
        # Observers set by app/ (metrics, traces): a record dropped on a full queue, seconds per batch.
        self.on_dropped = on_dropped
        self.on_batch = on_batch
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.retry_max_s = retry_max_s
        self.queue_max_bytes = queue_max_bytes
        self.spool = spool
        # Writes callers wait for (submit) that are queued and not yet taken: while there are any, the writer
        # does not gather, and the event wakes it from gathering when one arrives.
        self._waiting = 0
        self._urgent = asyncio.Event()
        self.queue: asyncio.Queue[Record | _Submitted | None] = asyncio.Queue(maxsize=queue_size)
        self.queued_bytes = 0
        self.stats = WriterStats()
        # Request IDs accepted but not yet committed: feedback for them is "stored", not "pending".
        self.queued_ids: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._gave_up = False  # stopping while the store fails: the rest is not retried
        self._last_drop_log = 0.0
        self._last_failure_log = 0.0

    def log(self, record: Record) -> bool:
        """Queue a record for logging without waiting. False (and counted) if the queue is full."""
        size = record.held_bytes()
        if self.queue.full() or self.queued_bytes + size > self.queue_max_bytes:
            self._drop_full(record.request_id)
            if self.on_dropped is not None:
                self.on_dropped(record)
            return False
        if self.spool is not None:
            self.spool.append(record)
        self.queue.put_nowait(record)
        self.queued_bytes += size
        self.queued_ids[record.request_id] += 1
        return True

    def _drop_full(self, request_id: str) -> None:
        self.stats.dropped_queue_full += 1
        now = time.monotonic()
        if now - self._last_drop_log > 5:
            self._last_drop_log = now
            log.error(
                "log queue full (%d records, %d bytes held): dropped request %s; %d dropped so far",
                self.queue.qsize(),
                self.queued_bytes,
                request_id,
                self.stats.dropped_queue_full,
            )

    def put(self, op: WriteOp) -> bool:
        """Queue a write without waiting for it (a cache entry from the proxy). False if the queue is full."""
        done: Waiter = asyncio.get_running_loop().create_future()
        # Nobody awaits this future: retrieve its outcome so a failed write is not reported as unretrieved.
        done.add_done_callback(lambda future: future.cancelled() or future.exception())
        try:
            self.queue.put_nowait(_Submitted(op, done, put_only=True))
        except asyncio.QueueFull:
            self.stats.dropped_queue_full += 1
            return False
        return True

    async def submit(self, op: WriteOp | list[WriteOp], timeout: float = 10.0) -> None:
        """Queue a write (or several, committed together) and wait until it is committed.

        Raises TimeoutError when the store does not take it within ``timeout``: the write is then withdrawn
        (it is not applied later, unless the store was applying it at that very moment), or the store's own
        error.
        """
        done: Waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self.queue.put(_Submitted(op, done))
                self._waiting += 1
                self._urgent.set()
                await asyncio.shield(done)
        except BaseException:  # timed out, or the caller was cancelled: nobody will look at the outcome
            done.cancel()  # the writer skips a cancelled write
            raise

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every record queued before this call is committed (or dropped and counted).

        Batches are applied in queue order, so an empty write queued now is done only after them.
        """
        await self.submit([], timeout)

    @property
    def failing(self) -> bool:
        """Whether the store refused the last write (and none has been taken since)."""
        return self.stats.failing_since is not None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feedgate-writer")

    async def stop(self, timeout: float = 60.0) -> None:
        """Write everything queued, then end. What is still unwritten after ``timeout`` is counted and said."""
        self._stopping = True
        self._urgent.set()
        if not self.queue.full():
            self.queue.put_nowait(None)
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout)
        except TimeoutError:
            # What is still queued was never written; the caller reports the counts in one line.
            self.stats.dropped_store_error += self.queue.qsize()
            return
        if self.spool is not None:
            self.spool.close(everything_written=self.queue.empty() and not self._gave_up)

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
            self._waiting -= sum(1 for item in batch if isinstance(item, _Submitted) and not item.put_only)
            if batch:
                await self._write(batch)
            if self._stopping and self.queue.empty():
                return

    async def _gather_more(self) -> None:
        """Let log rows accumulate for a moment: every transaction has a fixed cost, so fewer and larger
        batches cost less CPU per row. A waiting caller (feedback) or a full batch ends the wait."""
        if self._stopping or self._waiting or self.queue.qsize() >= self.batch_max:
            return
        self._urgent.clear()
        try:
            await asyncio.wait_for(self._urgent.wait(), self.batch_wait_s)
        except TimeoutError:
            pass

    async def _write(self, batch: list[Record | _Submitted]) -> None:
        started = time.perf_counter()
        await self._write_batch(batch)
        if self.on_batch is not None:
            self.on_batch(time.perf_counter() - started)

    async def _write_batch(self, batch: list[Record | _Submitted]) -> None:
        groups: list[Group] = []
        logged: list[str] = []
        for item in batch:
            if isinstance(item, _Submitted):
                groups.append((list(item.op) if isinstance(item.op, list) else [item.op], item.done))
                continue
            logged.append(item.request_id)
            self.queued_bytes -= item.held_bytes()
            try:
                row = self.build_row(item)
                groups.append(([row], None))
            except Exception:
                self.stats.dropped_build_error += 1
                log.exception("could not build the log row for request %s", item.request_id)
                continue
            if row.answer_problem == "undecodable":
                self.stats.undecodable_answers += 1
            elif row.answer_problem == "truncated":
                self.stats.truncated_answers += 1
        await self._apply(groups)
        if self.spool is not None:
            self.spool.written(len(logged))
        for request_id in logged:
            left = self.queued_ids[request_id] - 1
            if left > 0:
                self.queued_ids[request_id] = left
            else:
                del self.queued_ids[request_id]

    async def _apply(self, groups: list[Group]) -> None:
        """Apply a batch. While the store fails, retry in smaller parts, then with back-off."""
        pending = groups
        part_size = len(pending)
        delay = 0.05
        while pending:
            pending = [group for group in pending if group[1] is None or not group[1].cancelled()]
            part = pending[:part_size]
            ops = [op for group_ops, _ in part for op in group_ops]
            if not ops:  # flush() markers, withdrawn writes, rows that could not be built
                self._done(part, None)
                pending = pending[len(part) :]
                continue
            try:
                await self.store.apply(ops)
            except RowRejected as exc:
                self._failed(exc)
                # Retrying cannot fix a bad row: apply each record alone, so only the bad one is dropped
                # (and counted) instead of blocking every record queued behind it.
                await self._write_groups_apart(part)
            except Exception as exc:
                self._failed(exc)
                if self._stopping and (self._gave_up or delay >= self.retry_max_s):
                    # Stopping, and the store still fails: what is left is lost (counted, said once at the end;
                    # kept in the spool when there is one), and later batches are not retried at all.
                    self._gave_up = True
                    self._done(pending, exc)
                    return
                if part_size > 1:
                    part_size = max(1, part_size // 2)
                    continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            else:
                self._done(part, None)
                self._recovered()
            pending = pending[len(part) :]
            part_size, delay = max(1, min(len(pending), part_size * 2)), 0.05

    def _failed(self, exc: Exception) -> None:
        stats = self.stats
        stats.store_errors += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"
        stats.last_error_at = time.time()
        if isinstance(exc, RowRejected):
            return
        if stats.failing_since is None:
            stats.failing_since = stats.last_error_at
        now = time.monotonic()
        if now - self._last_failure_log > 5:
            self._last_failure_log = now
            log.warning("store write failed (%s); retrying, %d records waiting", stats.last_error, self.queue.qsize())

    def _recovered(self) -> None:
        if self.stats.failing_since is not None:
            log.info("store writes again after %.1fs", time.time() - self.stats.failing_since)
            self.stats.failing_since = None

    def _done(self, groups: list[Group], exc: Exception | None) -> None:
        for ops, waiter in groups:
            rows = sum(1 for op in ops if isinstance(op, InsertRequest))
            if exc is None:
                self.stats.written += rows
            else:
                self.stats.dropped_store_error += rows
            if waiter is not None and not waiter.done():
                waiter.set_result(None) if exc is None else waiter.set_exception(exc)

    async def _write_groups_apart(self, groups: list[Group]) -> None:
        """A batch with one bad row must not sink the good ones: apply each group alone to isolate it."""
        for group in groups:
            try:
                await self.store.apply(group[0])
            except Exception as exc:
                log.error("dropped an unwritable record: %s", exc)
                self._done([group], exc)
                continue
            self._done([group], None)
