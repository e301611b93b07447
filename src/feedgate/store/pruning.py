"""Pruning as a run of small writes: ``log.retention_days`` in the gateway and ``feedgate prune`` alike.

Each batch is one ``PruneBefore`` (a few thousand rows, one short transaction) handed to ``submit``: in the
gateway the writer's ``submit``, so batches queue behind log rows and never hold the writer for long; in
``feedgate prune`` the store's own ``apply``, whose short transactions interleave with a gateway serving
the same store (SQLite waits its busy timeout for the write lock; PostgreSQL locks rows). Then the space is
given back the same way, a few thousand pages at a time (``ReclaimSpace``; SQLite only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from feedgate.store.ops import PruneBefore, ReclaimSpace, WriteOp

Submit = Callable[[WriteOp], Awaitable[None]]
BATCH_ROWS = 2000
VACUUM_PAGES = 2000  # 16 MB of 8 KiB pages a step


@dataclass(slots=True)
class PruneTotals:
    requests: int = 0
    feedback_events: int = 0
    feedback: int = 0
    scores: int = 0
    request_properties: int = 0
    batches: int = 0

    @property
    def feedback_rows(self) -> int:
        return self.feedback_events + self.feedback + self.scores + self.request_properties


async def prune_before(
    submit: Submit, before_utc: str, *, batch: int = BATCH_ROWS, pause_s: float = 0.0
) -> PruneTotals:
    """Delete every logged request older than ``before_utc`` (but those kept for datasets), batch by batch.

    ``pause_s`` between batches leaves the writer to log rows in between, whatever else is queued."""
    totals = PruneTotals()
    from_utc = ""
    while True:
        op = PruneBefore(before_utc, batch, from_utc)
        await submit(op)
        found = op.result
        totals.batches += 1
        totals.requests += found.requests
        totals.feedback_events += found.feedback_events
        totals.feedback += found.feedback
        totals.scores += found.scores
        totals.request_properties += found.request_properties
        if found.last_utc is None or found.requests < batch:
            return totals
        from_utc = found.last_utc
        await asyncio.sleep(pause_s)


async def reclaim_space(submit: Submit, *, pages: int = VACUUM_PAGES, pause_s: float = 0.0) -> int:
    """Give free pages back to the file system in steps of ``pages``; how many were given back."""
    freed = 0
    while True:
        op = ReclaimSpace(pages)
        await submit(op)
        freed += op.freed
        if op.freed < pages:
            return freed
        await asyncio.sleep(pause_s)
