"""Datasets and regression alerts in SQL, for both stores: writes (applied by the writer) and reads.

A dataset is a list of request IDs (Helicone's ``helicone-dataset``) or a snapshot of the requests that
matched a filter when it was made (feedgate's ``POST /v1/datasets``). Items point at request IDs, not at
attempts, so an export always reads each request's latest attempt. Deletion is soft, as in Helicone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from feedgate.store.dialect import Dialect, Executor
from feedgate.store.filters import compile_filter
from feedgate.store.ops import CreateDataset, DatasetOp, DeleteDataset, MutateDataset, RecordAlerts
from feedgate.store.protocol import Store

DATASET_OPS = (CreateDataset, MutateDataset, DeleteDataset, RecordAlerts)
_ADD_ITEM = (
    "INSERT INTO dataset_items (dataset_id, request_id, created_utc) VALUES (?, ?, ?) "
    "ON CONFLICT (dataset_id, request_id) DO NOTHING"
)
_LIVE = "deleted_utc IS NULL"


async def apply_dataset_op(db: Executor, dialect: Dialect, op: DatasetOp) -> None:
    if isinstance(op, CreateDataset):
        filter_json = None if op.filter_tree is None else orjson.dumps(op.filter_tree).decode()
        await db.execute(
            "INSERT INTO datasets (id, name, origin, filter_json, meta_json, created_utc) VALUES (?, ?, ?, ?, ?, ?)",
            (op.dataset_id, op.name, op.origin, filter_json, op.meta_json, op.datetime_utc),
        )
        if op.request_ids:
            await db.executemany(_ADD_ITEM, [(op.dataset_id, rid, op.datetime_utc) for rid in op.request_ids])
        if op.filter_tree is not None:
            # Latest attempts only would give the same IDs: any attempt of a request stands for the request.
            where = compile_filter(op.filter_tree, dialect).where
            await db.execute(
                "INSERT INTO dataset_items (dataset_id, request_id, created_utc) "
                f"SELECT DISTINCT CAST(? AS TEXT), r.request_id, CAST(? AS TEXT) FROM requests r WHERE {where.sql} "
                "ON CONFLICT (dataset_id, request_id) DO NOTHING",
                (op.dataset_id, op.datetime_utc, *where.params),
            )
    elif isinstance(op, MutateDataset):
        if op.add:
            await db.executemany(_ADD_ITEM, [(op.dataset_id, rid, op.datetime_utc) for rid in op.add])
        if op.remove:
            await db.executemany(
                "DELETE FROM dataset_items WHERE dataset_id = ? AND request_id = ?",
                [(op.dataset_id, rid) for rid in op.remove],
            )
    elif isinstance(op, DeleteDataset):
        await db.execute("UPDATE datasets SET deleted_utc = ? WHERE id = ?", (op.datetime_utc, op.dataset_id))
    else:
        await db.executemany(
            "INSERT INTO regression_alerts (fingerprint, dimension, key, metric, payload_json, notified_utc) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
            [(*alert, op.datetime_utc) for alert in op.alerts],
        )


async def list_datasets(store: Store, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Live datasets (all, or these IDs) with their item counts, newest first."""
    chosen = f" AND d.id IN ({', '.join('?' for _ in ids)})" if ids else ""
    return await store.query(
        "SELECT d.id, d.name, d.origin, d.filter_json, d.meta_json, d.created_utc, "
        "(SELECT COUNT(*) FROM dataset_items i WHERE i.dataset_id = d.id) AS requests_count "
        f"FROM datasets d WHERE d.{_LIVE}{chosen} ORDER BY d.created_utc DESC, d.id",
        list(ids or ()),
    )


async def dataset_items(store: Store, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
    return await store.query(
        "SELECT id, request_id, dataset_id, created_utc FROM dataset_items WHERE dataset_id = ? "
        "ORDER BY id LIMIT ? OFFSET ?",
        (dataset_id, limit, offset),
    )


async def notified_fingerprints(store: Store, fingerprints: Sequence[str]) -> set[str]:
    if not fingerprints:
        return set()
    rows = await store.query(
        f"SELECT fingerprint FROM regression_alerts WHERE fingerprint IN ({', '.join('?' for _ in fingerprints)})",
        list(fingerprints),
    )
    return {row["fingerprint"] for row in rows}
