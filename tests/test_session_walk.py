"""The sessions list, page by page, on both stores, against a plain Python reading of randomized rows: each
session once, by its latest matching request (ties by session ID), with its figures over the matching requests
only, whatever the page size."""

from __future__ import annotations

import random
from typing import Any

import pytest

from feedgate.store.dialect import Frag
from feedgate.store.ops import PutFeedback, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.reads.sessions import sessions_before
from test_store_contract import at, row

MODELS = ["m-a", "m-b", "m-c"]


def random_sessions(seed: int) -> tuple[list[WriteOp], list[dict[str, Any]], dict[str, bool]]:
    """Requests spread over sessions (some without one, some retried, many at equal times) and session
    ratings; what a reader knows of each stored attempt."""
    rng = random.Random(seed)
    ops: list[WriteOp] = []
    stored: list[dict[str, Any]] = []
    sessions = [f"s{i:03d}" for i in range(180)]
    for i in range(1500):
        request_id = f"q{i:04d}"
        seconds = rng.choice([i * 10, (i // 7) * 70])  # runs of equal times: ties between sessions too
        session_id = rng.choice([*sessions, None])
        model = rng.choice(MODELS)
        attempts = [1, 2] if rng.random() < 0.05 else [1]
        for attempt in attempts:
            ops.append(row(request_id, seconds, session_id=session_id, model=model, attempt=attempt))
            stored.append({"request_id": request_id, "at": at(seconds), "session": session_id, "model": model})
    ratings = {session_id: rng.random() < 0.5 for session_id in rng.sample(sessions, 40)}
    for session_id, value in ratings.items():
        ops.append(PutFeedback("session", session_id, "explicit", value))
    return ops, stored, ratings


def expected(stored: list[dict[str, Any]], ratings: dict[str, bool], model: str | None) -> list[dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    for found in stored:
        if found["session"] is None or (model is not None and found["model"] != model):
            continue
        one = figures.setdefault(found["session"], {"ids": set(), "times": []})
        one["ids"].add(found["request_id"])
        one["times"].append(found["at"])
    out = [
        {
            "session_id": session_id,
            "requests": len(one["ids"]),
            "first_utc": min(one["times"]),
            "last_utc": max(one["times"]),
            "rating": ratings.get(session_id),
        }
        for session_id, one in figures.items()
    ]
    return sorted(out, key=lambda s: (s["last_utc"], s["session_id"]), reverse=True)


@pytest.mark.parametrize("model", [None, "m-b"])
async def test_every_page_lists_each_session_once_in_order(store: Store, model: str | None) -> None:
    ops, stored, ratings = random_sessions(seed=11)
    await store.apply(ops)
    where = Frag("1 = 1") if model is None else Frag("r.model = ?", (model,))
    wanted = expected(stored, ratings, model)
    assert len(wanted) > 100
    for size in (1, 7, 50, 1000):
        pages: list[list[dict[str, Any]]] = []
        before = None
        while True:
            page = await sessions_before(store, where, before, size + 1)
            pages.append(page[:size])
            if len(page) <= size:
                break
            before = (page[size - 1]["last_utc"], page[size - 1]["session_id"])
        assert [s for page in pages for s in page] == wanted, size
        assert all(len(page) == size for page in pages[:-1])


async def test_a_time_range_counts_only_its_requests(store: Store) -> None:
    ops, stored, ratings = random_sessions(seed=5)
    await store.apply(ops)
    since, until = at(3000), at(9000)
    inside = [found for found in stored if since <= found["at"] < until]
    where = Frag("r.datetime_utc >= ? AND r.datetime_utc < ?", (since, until))
    assert await sessions_before(store, where, None, 1000) == expected(inside, ratings, None)


async def test_sessions_tied_at_one_moment_across_a_long_walk(store: Store) -> None:
    """More sessions logged in the same second than one batch of the walk holds: the walk meets them in
    the order they were logged in, so a page must not close before every session of that second is met."""
    rng = random.Random(3)
    sessions = [f"t{i:04d}" for i in range(800)]
    rng.shuffle(sessions)
    ops: list[WriteOp] = []
    stored: list[dict[str, Any]] = []
    for i in range(1200):
        request_id = f"c{rng.randrange(10**9):09d}-{i}"
        seconds = 5000 if i < 800 else rng.randrange(4000)
        session_id = sessions[i] if i < 800 else rng.choice(sessions)
        ops.append(row(request_id, seconds, session_id=session_id))
        stored.append({"request_id": request_id, "at": at(seconds), "session": session_id, "model": None})
    await store.apply(ops)
    wanted = expected(stored, {}, None)
    assert all(s["last_utc"] == at(5000) for s in wanted)
    assert await sessions_before(store, Frag("1 = 1"), None, 20) == wanted[:20]
    after = (wanted[19]["last_utc"], wanted[19]["session_id"])
    assert await sessions_before(store, Frag("1 = 1"), after, 20) == wanted[20:40]
