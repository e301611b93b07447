"""Applying the writer's ops other than request rows, once for both stores.

Ops apply in batch order, so a clear after a rating wins as it would one by one; consecutive ratings,
signals and scores are coalesced into a few ``executemany`` calls (a 1,000-item feedback batch is four
statements, not thousands). Statements use ``?``; each store's ``Executor`` adapts them.
"""

from __future__ import annotations

from collections.abc import Sequence

from feedgate.store.base import DropPending, InsertRequest, PutCacheEntry, PutFeedback, PutProperty, PutScores, WriteOp
from feedgate.store.cache_sql import DELETE_EXPIRED_CACHE, UPSERT_CACHE_ENTRY, cache_entry_params
from feedgate.store.datasets import DATASET_OPS, Executor, apply_dataset_op
from feedgate.store.dialect import UPSERT_PROPERTY, feedback_run
from feedgate.store.pending_sql import drop_pending_statements
from feedgate.store.sql import Dialect


async def apply_other_ops(db: Executor, dialect: Dialect, ops: Sequence[WriteOp]) -> None:
    run: list[PutFeedback | PutScores] = []
    for op in ops:
        if isinstance(op, PutFeedback | PutScores):
            run.append(op)
            continue
        if run:
            await _feedback(db, run)
            run = []
        if isinstance(op, InsertRequest):
            continue  # the store inserts request rows first, in one statement of its own
        if isinstance(op, PutProperty):
            await db.execute(UPSERT_PROPERTY, (op.request_id, op.key, op.value, op.datetime_utc))
        elif isinstance(op, PutCacheEntry):
            await db.execute(DELETE_EXPIRED_CACHE, (op.created_utc,))
            await db.execute(UPSERT_CACHE_ENTRY, cache_entry_params(op))
        elif isinstance(op, DropPending) and op.request_ids:
            for statement in drop_pending_statements(len(op.request_ids)):
                await db.execute(statement, op.request_ids)
        elif isinstance(op, DATASET_OPS):
            await apply_dataset_op(db, dialect, op)
    if run:
        await _feedback(db, run)


async def _feedback(db: Executor, run: list[PutFeedback | PutScores]) -> None:
    for sql, rows in feedback_run(run):
        await db.executemany(sql, rows)
