"""The rollups the writer keeps agree with the rows, whatever happens to a request and in whatever order.

Each test writes through ``Store.apply`` (what the single writer calls), on SQLite and PostgreSQL, then
compares the stored per-hour sums with plain SQL over the rows, and with ``check`` (a recomputation from
rows) over every hour.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analysis_data import rate, row, score, signal
from feedgate.config import load_settings
from feedgate.store import make_store
from feedgate.store.ops import DeleteScores, PutProperty, RebuildRollups, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.rollups.build import check, differences, rebuild, stored_cells
from feedgate.store.rollups.keeper import next_hour
from feedgate.store.sqlite import SqliteStore
from pgschema import Schemas

BASE = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5")
USERS = ("u1", "u2", "u3", None)
FEATURES = ("chat", "code", None)


def random_traffic(seed: int, requests: int = 160) -> list[list[WriteOp]]:
    """Batches of ops in the order a writer might see them: rows, retries, feedback before and after its row,
    ratings changed and cleared, signals, scores set and removed, properties set afterwards."""
    rng = random.Random(seed)
    batches: list[list[WriteOp]] = []
    ids: list[str] = []
    for n in range(requests):
        request_id = f"r{n}"
        when = BASE + timedelta(hours=rng.randrange(0, 48), minutes=rng.randrange(60), seconds=rng.random())
        feature = rng.choice(FEATURES)
        batch: list[WriteOp] = []
        if rng.random() < 0.08:  # feedback that lands before its request row
            batch.append(rate(request_id, rng.random() < 0.5))
        batch.append(
            row(
                request_id,
                when=when,
                model=rng.choice(MODELS),
                user=rng.choice(USERS),
                duration=rng.choice([None, 0.0, rng.lognormvariate(6, 1)]),
                cost=rng.choice([None, round(rng.random(), 4)]),
                status=rng.choice([200, 200, 200, 429, 500]),
                properties={"feature": feature} if feature else {},
                prompt_id=rng.choice([None, "support"]),
                question=rng.choice(["same question", f"question {n}"]),
            )
        )
        ids.append(request_id)
        if rng.random() < 0.1:  # a retry: a later attempt, maybe in another hour
            later = when + timedelta(minutes=rng.randrange(1, 90))
            batch.append(row(request_id, when=later, model=rng.choice(MODELS), user=rng.choice(USERS)))
        batches.append(batch)
        if rng.random() < 0.5:
            feedback: list[WriteOp] = []
            for _ in range(rng.randrange(1, 5)):
                target = rng.choice(ids)
                pick = rng.random()
                if pick < 0.35:
                    feedback.append(rate(target, rng.random() < 0.6))
                elif pick < 0.45:
                    feedback.append(rate(target, None))  # type: ignore[arg-type]  # clears the rating
                elif pick < 0.65:
                    feedback.append(signal(target, rng.choice(["copied", "regenerated"]), rng.random() < 0.5))
                elif pick < 0.8:
                    feedback.append(score(target, rng.choice(["helpfulness", "accuracy"]), rng.uniform(-2, 5)))
                elif pick < 0.88:
                    feedback.append(DeleteScores(target, rng.choice([None, ("helpfulness",)])))
                else:
                    feedback.append(PutProperty(target, "feature", rng.choice(["chat", "code", "search"])))
            batches.append(feedback)
    return batches


async def fill(store: Store, seed: int) -> None:
    for batch in random_traffic(seed):
        await store.apply(batch)


async def sums_by(store: Store, dimension: str) -> dict[tuple[int, str], tuple[int, int, int]]:
    rows = await store.fetch(
        "SELECT keyed, key, SUM(requests), SUM(positive), SUM(negative) FROM rollup_cells WHERE dimension = ? "
        "GROUP BY keyed, key",
        (dimension,),
    )
    return {(int(r[0]), r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows if r[2]}


_LATEST = (
    "requests r WHERE NOT EXISTS (SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.attempt > r.attempt)"
)


async def test_rollups_equal_the_rows_after_random_traffic(store: Store) -> None:
    await fill(store, seed=7)
    # Requests and ratings per model, counted by plain SQL over each request's latest attempt.
    expected_rows = await store.fetch(
        "SELECT r.model, COUNT(*), "
        "SUM(CASE WHEN f.rating = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN f.rating = 0 THEN 1 ELSE 0 END) "
        "FROM requests r LEFT JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id "
        "WHERE NOT EXISTS (SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.attempt > r.attempt) "
        "GROUP BY r.model"
    )
    expected = {(1, model): (int(n), int(up), int(down)) for model, n, up, down in expected_rows}
    assert await sums_by(store, "model") == expected
    total = await store.fetch(f"SELECT COUNT(*) FROM {_LATEST}")
    assert (await sums_by(store, "all"))[(1, "")][0] == total[0][0] == 160
    signals = await store.fetch(
        "SELECT COUNT(*) FROM feedback_events e WHERE e.kind = 'implicit' AND e.target_type = 'request' "
        "AND EXISTS (SELECT 1 FROM requests r WHERE r.request_id = e.target_id)"
    )
    noted = await store.fetch(
        "SELECT SUM(count) FROM rollup_notes WHERE dimension = 'all' AND kind IN ('signal+', 'signal-')"
    )
    assert noted[0][0] == signals[0][0] > 0
    hours, problems = await check(store, (), hours=10_000)
    assert hours >= 40 and problems == []


@pytest.fixture(params=["sqlite", "postgres"])
async def feature_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store of either kind that rolls up the property ``feature``, as ``analysis.properties`` says."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgres":
        schemas: Schemas = request.getfixturevalue("pg_schemas")
        url = schemas.new_url()
    settings = load_settings(environ={}, overrides={"database": {"url": url}, "analysis": {"properties": ["feature"]}})
    opened = make_store(settings)
    await opened.open()
    yield opened
    await opened.close()


async def test_properties_in_the_rollups_follow_properties_set_later(feature_store: Store) -> None:
    store = feature_store
    await store.apply([row("p1", when=BASE, properties={"feature": "chat"}), row("p2", when=BASE)])
    await store.apply([PutProperty("p1", "feature", "code"), PutProperty("p2", "feature", "code")])
    assert await sums_by(store, "property:feature") == {(1, "code"): (2, 0, 0)}
    await store.apply([PutProperty("p2", "feature", "chat"), rate("p2", True)])
    assert await sums_by(store, "property:feature") == {(1, "code"): (1, 0, 0), (1, "chat"): (1, 1, 0)}
    assert (await check(store, ("feature",), hours=10))[1] == []


async def test_a_retry_moves_the_request_to_its_latest_attempt(store: Store) -> None:
    await store.apply([row("x", when=BASE, model="gpt-4o", duration=100.0), rate("x", False)])
    await store.apply([row("x", when=BASE + timedelta(hours=3), model="gpt-4o-mini", duration=200.0)])
    assert await sums_by(store, "model") == {(1, "gpt-4o-mini"): (1, 0, 1)}
    cells = await store.fetch("SELECT hour_utc, requests FROM rollup_cells WHERE dimension = 'all' AND requests <> 0")
    assert cells == [("2026-11-02T03:00:00.000000Z", 1)]


async def test_a_regenerated_answer_counts_on_the_earlier_request(store: Store) -> None:
    first = row("q1", when=BASE, user="u1", question="what is 2+2")
    again = row("q2", when=BASE + timedelta(minutes=2), user="u1", question="what is 2+2")
    await store.apply([first])
    await store.apply([again])  # the store derives "regenerated" on q1 inside this batch
    notes = await store.fetch(
        "SELECT kind, name, count FROM rollup_notes WHERE dimension = 'all' AND kind LIKE 'signal%' ORDER BY kind"
    )
    assert notes == [("signal-", "regenerated", 1), ("signal_requests", "regenerated", 1)]
    assert (await check(store, (), hours=10))[1] == []


async def test_rebuild_recomputes_the_same_sums(feature_store: Store) -> None:
    store = feature_store
    await fill(store, seed=11)
    names = ["all", "model", "prompt", "user", "path", "provider", "status", "property:feature"]
    kept = await stored_cells(store, "", "9999", names)
    await store.apply([RebuildRollups("2026-11-02T05:00:00.000000Z", "2026-11-02T06:00:00.000000Z")])
    assert differences(await stored_cells(store, "", "9999", names), kept) == []

    async def submit(op: WriteOp) -> None:
        await store.apply([op])

    windows = await rebuild(store, submit)
    assert windows >= 1
    assert differences(await stored_cells(store, "", "9999", names), kept) == []
    coverage = await store.fetch("SELECT DISTINCT complete_from_utc FROM rollup_dimensions")
    assert coverage == [("",)]


async def coverage_of(store: Store) -> dict[str, str]:
    return {row[0]: row[1] for row in await store.fetch("SELECT dimension, complete_from_utc FROM rollup_dimensions")}


async def test_coverage_is_withdrawn_when_rollups_are_off_and_starts_next_hour_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fg.db'}"
    store = SqliteStore(url)
    await store.open()
    assert set((await coverage_of(store)).values()) == {""}  # a new store: complete from the start
    await store.apply([row("a", when=BASE)])
    await store.close()
    off = SqliteStore(url, rollups=None)
    await off.open()
    assert await coverage_of(off) == {}
    await off.apply([row("b", when=BASE)])  # not summed: nothing may trust the rollups now
    await off.close()
    again = SqliteStore(url, rollups=["feature"])
    await again.open()
    coverage = await coverage_of(again)
    assert set(coverage) == {"all", "model", "prompt", "user", "path", "provider", "status", "property:feature"}
    assert set(coverage.values()) == {next_hour()}

    async def submit(op: WriteOp) -> None:
        await again.apply([op])

    await rebuild(again, submit, since_utc="2026-11-01T00:00:00Z")
    assert set((await coverage_of(again)).values()) == {"2026-11-01T00:00:00.000000Z"}
    assert (await sums_by(again, "all"))[(1, "")] == (2, 0, 0)
    await again.close()


async def test_a_store_written_before_rollups_gets_them_when_it_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqliteStore(url)
    await store.open()
    await fill(store, seed=3)
    expected = await sums_by(store, "model")
    # Make it the store of a version before m010: no rollup tables, the step not recorded.
    for table in ("rollup_cells", "rollup_notes", "rollup_latency", "rollup_dimensions"):
        await store.apply([])  # keeps the writer connection's transaction state plain
        await store.reader.execute(f"DROP TABLE {table}")
    await store.reader.execute("DELETE FROM feedgate_migrations WHERE name = 'm010_rollups'")
    await store.reader.commit()
    await store.close()
    upgraded = SqliteStore(url)
    await upgraded.open()
    assert set((await coverage_of(upgraded)).values()) == {""}
    assert await sums_by(upgraded, "model") == expected
    assert (await check(upgraded, (), hours=10_000))[1] == []
    await upgraded.close()
