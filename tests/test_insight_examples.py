"""The thumbs-down examples insights show for a group: commented first, then newest, latest attempts only,
within the selection; on both stores, against a plain Python reading of the same rows."""

from __future__ import annotations

import random
from typing import Any

from feedgate.store.dialect import Frag
from feedgate.store.ops import PutFeedback, PutProperty, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.reads.examples import negative_examples
from feedgate.store.reads.groups import dimension
from test_store_contract import at, rating, row

USERS = [f"u{i}" for i in range(40)]  # more groups than one read takes, so several reads share them
MODELS = ["m-a", "m-b"]
COMMENTS = [None, None, "", "   ", "too slow", "wrong answer"]


def random_store_ops(seed: int) -> tuple[list[WriteOp], list[dict[str, Any]]]:
    """Requests (some retried), their ratings and comments and a later property; and what a reader knows of
    each latest attempt: its time, groups, rating and comment."""
    rng = random.Random(seed)
    ops: list[WriteOp] = []
    latest: list[dict[str, Any]] = []
    for i in range(600):
        request_id = f"q{i:04d}"
        seconds = rng.choice([i * 60, (i // 3) * 60])  # equal times too: the request ID breaks the tie
        user, model = rng.choice(USERS), rng.choice(MODELS)
        if rng.random() < 0.1:  # a superseded first attempt, in another group: it must never be an example
            ops.append(row(request_id, seconds - 30, user_id="u-stale", model="m-stale", status=500))
        ops.append(row(request_id, seconds, user_id=user, model=model))
        feature = rng.choice(["chat", "code", None])
        if feature is not None:
            ops.append(PutProperty(request_id, "feature", feature))
        value = rng.choice([True, False, False, None])
        comment = rng.choice(COMMENTS)
        if value is not None:
            ops.append(rating(request_id, value, comment=comment))
        latest.append(
            {"id": request_id, "at": at(seconds), "user": user, "model": model, "property:feature": feature}
            | {"negative": value is False, "comment": comment}
        )
    return ops, latest


def expected(latest: list[dict[str, Any]], dim: str, key: str, limit: int, since: str) -> list[dict[str, Any]]:
    negatives = [r for r in latest if r[dim] == key and r["negative"] and r["at"] >= since]
    negatives.sort(key=lambda r: (r["at"], r["id"]), reverse=True)
    negatives.sort(key=lambda r: not commented(r))  # stable: newest first within each
    return [{"request_id": r["id"], "comment": r["comment"]} for r in negatives[:limit]]


async def test_examples_are_commented_first_then_newest_in_every_group(store: Store) -> None:
    ops, latest = random_store_ops(seed=7)
    await store.apply(ops)
    since = at(100 * 60)
    wanted = {
        dimension(store.dialect, "user"): [*USERS, "u-stale", "nobody"],
        dimension(store.dialect, "model"): MODELS,
        dimension(store.dialect, "property:feature"): ["chat", "code"],
    }
    for limit in (1, 3, 20):
        found = await negative_examples(store, wanted, Frag("r.datetime_utc >= ?", (since,)), limit)
        for dim, keys in wanted.items():
            for key in keys:
                assert found[dim.name][key] == expected(latest, dim.name, key, limit, since), (dim.name, key)
    assert found["user"]["u-stale"] == [] and found["user"]["nobody"] == []
    # Some groups (at 20 examples) had fewer commented thumbs-down, and were filled up with their newest others.
    assert any(
        commented(examples[0]) and not commented(examples[-1]) for examples in found["user"].values() if examples
    )


def commented(example: dict[str, Any]) -> bool:
    return bool(example["comment"] and example["comment"].strip())


async def test_a_cleared_or_changed_rating_is_no_example(store: Store) -> None:
    ops, latest = random_store_ops(seed=11)
    await store.apply(ops)
    down = [r for r in latest if r["negative"] and r["user"] == "u1"]
    await store.apply(
        [
            PutFeedback("request", down[0]["id"], "explicit", None, datetime_utc=at(10**6)),  # cleared
            PutFeedback("request", down[1]["id"], "explicit", True, datetime_utc=at(10**6)),  # now a thumbs-up
        ]
    )
    found = await negative_examples(store, {dimension(store.dialect, "user"): ["u1"]}, Frag("1 = 1"), 50)
    ids = [str(e["request_id"]) for e in found["user"]["u1"]]
    assert down[0]["id"] not in ids and down[1]["id"] not in ids
    assert sorted(ids) == sorted(r["id"] for r in down[2:])


async def test_a_group_whose_thumbs_down_lie_far_back_is_found_past_many_newer_requests(store: Store) -> None:
    """Thousands of newer requests of other groups before a rare group's first thumbs-down, and a sparse
    group with a few in every stretch: a read that walks newest first must go on past them (PostgreSQL
    walks a property's requests in batches, then reads the groups still short in one pass over the older
    ones), and return each group's examples as they are, each once."""
    rng = random.Random(5)
    ops: list[WriteOp] = []
    latest: list[dict[str, Any]] = []
    for i in range(12_000):
        request_id = f"w{i:05d}"
        seconds = i // 2  # pairs at equal times: the request ID breaks the tie
        feature = "rare" if i < 300 and i % 3 == 0 else "sparse" if i % 97 == 0 else rng.choice(["common", "other"])
        ops.append(row(request_id, seconds, user_id="u", model="m"))
        ops.append(PutProperty(request_id, "feature", feature))
        value = False if feature in ("rare", "sparse") else rng.choice([True, False, None, None, None, None])
        comment = rng.choice(COMMENTS) if value is False else None
        if value is not None:
            ops.append(rating(request_id, value, comment=comment))
        latest.append(
            {"id": request_id, "at": at(seconds), "property:feature": feature, "negative": value is False}
            | {"comment": comment}
        )
    await store.apply(ops)
    dim = dimension(store.dialect, "property:feature")
    for limit in (3, 40):
        found = await negative_examples(store, {dim: ["rare", "sparse", "common", "nowhere"]}, Frag("1 = 1"), limit)
        for key in ("rare", "sparse", "common", "nowhere"):
            assert found[dim.name][key] == expected(latest, dim.name, key, limit, at(0)), (key, limit)
    assert len(found[dim.name]["rare"]) == 40 and found[dim.name]["nowhere"] == []
