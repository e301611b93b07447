"""Latency percentiles above the exact limit: estimated from a sample, close to the exact figures, with small
groups made exact again; on SQLite and PostgreSQL alike. The limits are lowered so a few thousand rows
take the path a store of millions takes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedgate.analysis.quality import group_stats
from feedgate.analysis.stats import GroupStats, percentile
from feedgate.store.filters import compile_filter
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest
from feedgate.store.postgres import PostgresStore
from feedgate.store.protocol import Store
from feedgate.store.reads.durations import Sampling
from feedgate.store.reads.groups import dimension
from feedgate.store.sqlite import SqliteStore
from feedgate.store.utc import utc_text

T0 = datetime(2025, 3, 1, tzinfo=UTC)
STALE_MS = 1e6  # superseded attempts: counted by mistake, they would own every p95


def logged(request_id: str, n: int, duration_ms: float, **fields: Any) -> InsertRequest:
    values: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=request_id,
        datetime_utc=utc_text(T0 + timedelta(seconds=n)),
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        is_stream=0,
        status=200,
        duration_ms=duration_ms,
        properties_json="{}",
        body_bytes=0,
    )
    values.update(fields)
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


class Traffic:
    """Requests with known durations per group; a retried one's first attempt is absurdly slow."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ops: list[InsertRequest] = []
        self.durations: dict[str | None, list[float]] = {}

    def add(self, column: str, key: str | None, retried: bool = False) -> None:
        n = len(self.ops)
        # Latency-like (long right tail) and slowly rising over time, as a regression would make it.
        duration = round(self.rng.lognormvariate(6.5, 0.5) * (1 + n / 20_000), 1)
        if retried:
            self.ops.append(logged(f"q{n}", n, STALE_MS, **{column: key}))
        self.ops.append(logged(f"q{n}", n, duration, **{column: key}))
        self.durations.setdefault(key, []).append(duration)

    def exact(self, key: str | None) -> tuple[float | None, float | None]:
        return percentile(self.durations[key], 50), percentile(self.durations[key], 95)

    def everything(self) -> tuple[float | None, float | None]:
        every = [d for values in self.durations.values() for d in values]
        return percentile(every, 50), percentile(every, 95)


async def stats(
    store: Store, by: str, sampling: Sampling, tree: Any = "all"
) -> tuple[dict[str | None, GroupStats], GroupStats]:
    assert isinstance(store, SqliteStore | PostgresStore)
    where = compile_filter(tree, store.dialect).where
    groups, overall = await group_stats(store, dimension(store.dialect, by), where, sampling)
    return {g.key: g for g in groups}, overall


def figures(group: GroupStats) -> tuple[float | None, float | None]:
    return group.duration_ms_p50, group.duration_ms_p95


MODELS = ("gpt-4o", "gpt-4o-mini", "claude", "llama")


async def models_taking_turns(store: Store) -> Traffic:
    """As when an eval loop sends each question to every model: ids cycle with the models, so a sample of
    "every k-th id" would see some models only. 9,100 rows."""
    traffic = Traffic(seed=5)
    for n in range(8000):
        traffic.add("model", MODELS[n % 4])
    for n in range(400):  # a fifth of each model's requests retried: p95 would be a stale attempt's
        traffic.add("model", MODELS[n % 4], retried=True)
    for _ in range(150):
        traffic.add("model", "tiny")
        traffic.add("model", None)
    await store.apply(traffic.ops)
    return traffic


def model_is(*names: str) -> Any:
    tree: Any = {"request": {"model": {"equals": names[0]}}}
    for name in names[1:]:
        tree = {"left": tree, "operator": "or", "right": {"request": {"model": {"equals": name}}}}
    return tree


async def test_sampled_percentiles_are_close_to_the_exact_ones(store: Store) -> None:
    traffic = await models_taking_turns(store)
    # Half the rows are sampled, about 1,000 per model: a sample quantile's standard error is then 2-3%.
    sampling = Sampling(exact_max=1000, sample_target=4350, min_sampled=500)
    groups, overall = await stats(store, "model", sampling)
    for model in MODELS:
        assert figures(groups[model]) == pytest.approx(traffic.exact(model), rel=0.06), model
        assert groups[model].requests == 2100
    assert figures(overall) == pytest.approx(traffic.everything(), rel=0.03)
    # Too small to be sampled well: fetched again in full, so exact.
    assert figures(groups["tiny"]) == traffic.exact("tiny")
    assert figures(groups[None]) == traffic.exact(None)
    # Without the limits lowered the same store answers exactly.
    groups, overall = await stats(store, "model", Sampling())
    assert figures(groups["claude"]) == traffic.exact("claude") and figures(overall) == traffic.everything()


async def test_filtered_scopes_of_a_large_store_are_sized_by_their_own_rows(store: Store) -> None:
    traffic = await models_taking_turns(store)
    # Within the exact limit, though the store is well over it: exact.
    groups, overall = await stats(store, "model", Sampling(exact_max=2500, sample_target=2000), model_is("claude"))
    assert figures(groups["claude"]) == figures(overall) == traffic.exact("claude")
    # Over it, but less than half the store: a sample of the wanted size, not one sized by the whole store.
    sampling = Sampling(exact_max=1000, sample_target=2000, min_sampled=500)
    groups, overall = await stats(store, "model", sampling, model_is("gpt-4o", "llama"))
    assert set(groups) == {"gpt-4o", "llama"}
    for model in ("gpt-4o", "llama"):
        assert figures(groups[model]) == pytest.approx(traffic.exact(model), rel=0.06), model


async def test_small_groups_in_a_sampled_scope_are_exact(store: Store) -> None:
    traffic = Traffic(seed=6)
    users = [f"u{k}" for k in range(40)]
    for n in range(6000):
        traffic.add("user_id", "heavy" if n % 3 else users[n % 40], retried=n % 10 == 0)
    for _ in range(30):
        traffic.add("user_id", None)
    await store.apply(traffic.ops)
    groups, overall = await stats(store, "user", Sampling(exact_max=2500, sample_target=3000, min_sampled=400))
    assert figures(groups["heavy"]) == pytest.approx(traffic.exact("heavy"), rel=0.06)
    assert figures(overall) == pytest.approx(traffic.everything(), rel=0.06)
    for user in [*users, None]:
        assert figures(groups[user]) == traffic.exact(user), user
    # When the small groups together exceed the exact limit, the smallest are still made exact; the rest
    # keep the sample's estimate.
    groups, _ = await stats(store, "user", Sampling(exact_max=1000, sample_target=3000, min_sampled=400))
    exact = [user for user in users if figures(groups[user]) == traffic.exact(user)]
    assert figures(groups[None]) == traffic.exact(None) and len(exact) >= 19
