"""Retention: old logged requests go in small batches with what hangs off them; dataset members and newer
rows stay; logging goes on meanwhile. On SQLite and PostgreSQL alike (``store`` and ``make_gateway``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import GatewayFactory
from feedgate.appkeys import STORE
from feedgate.config import load_settings
from feedgate.store import make_store
from feedgate.store.ops import (
    REQUEST_COLUMNS,
    CreateDataset,
    DeleteDataset,
    InsertRequest,
    PutFeedback,
    PutProperty,
    PutScores,
    WriteOp,
)
from feedgate.store.protocol import Store
from feedgate.store.pruning import prune_before
from feedgate.store.retention import count_prunable
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer
from pgschema import Schemas

NOW = datetime.now(UTC)


def days_ago(days: float) -> str:
    return utc_text(NOW - timedelta(days=days))


def row(request_id: str, days: float, body: bytes = b'{"messages": []}') -> InsertRequest:
    values: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=request_id,
        datetime_utc=days_ago(days),
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        is_stream=0,
        status=200,
        properties_json="{}",
        request_body=body,
        response_body=b'{"choices": []}',
        body_bytes=len(body),
    )
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


def feedback_for(request_id: str) -> list[WriteOp]:
    return [
        PutFeedback("request", request_id, "explicit", True, comment="good"),
        PutFeedback("request", request_id, "implicit", None, signal="copied"),
        PutScores(request_id, {"stars": (4.0, "number")}),
        PutProperty(request_id, "team", "search"),
    ]


async def left(store: Store, table: str, column: str) -> list[str]:
    rows = await store.query(f"SELECT {column} AS id FROM {table} ORDER BY {column}")
    return [r["id"] for r in rows]


async def leftovers(store: Store) -> dict[str, list[str]]:
    return {
        "requests": sorted(set(await left(store, "requests", "request_id"))),
        "feedback_events": sorted(set(await left(store, "feedback_events", "target_id"))),
        "feedback": await left(store, "feedback", "target_id"),
        "scores": await left(store, "scores", "request_id"),
        "request_properties": await left(store, "request_properties", "request_id"),
    }


async def test_prune_deletes_only_older_requests_with_their_feedback_and_keeps_dataset_members(store: Store) -> None:
    ids = ["old-a", "old-b", "old-kept", "old-in-deleted-set", "retried", "new"]
    await store.apply([row(rid, 40) for rid in ids[:5]] + [row("retried", 1), row("new", 2)])
    await store.apply([op for rid in ids for op in feedback_for(rid)])
    await store.apply(
        [
            CreateDataset("keep", "golden answers", "helicone", request_ids=["old-kept"]),
            CreateDataset("gone", "scratch", "helicone", request_ids=["old-in-deleted-set"]),
            DeleteDataset("gone"),
            PutFeedback("session", "s-1", "explicit", False),  # not a request's: never pruned
        ]
    )
    cutoff = days_ago(30)
    doomed = await count_prunable(store, cutoff)
    assert (doomed.requests, doomed.kept_for_datasets) == (4, 1)  # old-a, old-b, the deleted set's, retried's 1st

    async def apply(op: WriteOp) -> None:
        await store.apply([op])

    totals = await prune_before(apply, cutoff, batch=2)  # several batches, each its own transaction
    assert totals.requests == 4 and totals.batches == 3
    # Three IDs lost every row: their two events, rating, score and property each went with them.
    assert (totals.feedback_events, totals.feedback, totals.scores, totals.request_properties) == (6, 3, 3, 3)
    assert (doomed.feedback_events, doomed.feedback, doomed.scores, doomed.request_properties) == (6, 3, 3, 3)
    kept = ["new", "old-kept", "retried"]
    assert await leftovers(store) == {
        "requests": kept,
        "feedback_events": ["new", "old-kept", "retried", "s-1"],
        "feedback": ["new", "old-kept", "retried", "s-1"],
        "scores": kept,
        "request_properties": kept,
    }
    attempts = await store.request_attempts("retried")
    assert [a["datetime_utc"] for a in attempts] == [days_ago(1)]  # the newer attempt and its feedback stay
    assert await prune_before(apply, cutoff) == type(totals)(batches=1)  # nothing left to do


@dataclass
class Logged:
    """A record for the writer that is already a row (the gateway's are exchanges built into rows)."""

    op: InsertRequest

    @property
    def request_id(self) -> str:
        return self.op.request_id

    def held_bytes(self) -> int:
        return 100


async def test_pruning_through_the_writer_loses_no_row_logged_meanwhile(store: Store) -> None:
    await store.apply([row(f"old-{n}", 60) for n in range(3000)])
    writer: Writer[Logged] = Writer(store, lambda record: record.op, batch_max=200)
    writer.start()

    async def log_new() -> None:
        for n in range(1500):
            assert writer.log(Logged(row(f"new-{n}", 0)))
            if n % 50 == 0:
                await asyncio.sleep(0.001)

    async def submit(op: WriteOp) -> None:
        await writer.submit(op, timeout=60)

    totals, _ = await asyncio.gather(prune_before(submit, days_ago(30), batch=500), log_new())
    await writer.stop()
    assert totals.requests == 3000
    assert writer.stats.written == 1500 and writer.stats.dropped_store_error == 0
    remaining = await left(store, "requests", "request_id")
    assert sorted(remaining) == sorted(f"new-{n}" for n in range(1500))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_gateway_prunes_by_retention_days_while_it_logs(
    backend: str, make_gateway: GatewayFactory, http: aiohttp.ClientSession, tmp_path: Path, request: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'retained.db'}"
    if backend == "postgres":
        schemas: Schemas = request.getfixturevalue("pg_schemas")  # skips without PostgreSQL
        url = schemas.new_url()
    seeded = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await seeded.open()
    await seeded.apply([row(f"old-{n}", 45) for n in range(5000)] + [row("recent", 5)])
    await seeded.close()

    gw = await make_gateway(database={"url": url}, log={"retention_days": 30})  # prunes from its start on
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    async def call(n: int) -> None:
        async with http.post(f"{gw.v1}/chat/completions", json=body, headers={"Helicone-Request-Id": f"live-{n}"}) as r:
            assert r.status == 200

    await asyncio.gather(*(call(n) for n in range(40)))
    store = gw.app[STORE]
    deadline = time.monotonic() + 30
    while await store.count_requests() != 41 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await gw.settled()
    assert set(await left(store, "requests", "request_id")) == {"recent", *(f"live-{n}" for n in range(40))}
