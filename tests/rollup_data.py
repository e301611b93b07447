"""Randomized log rows and feedback for the rollup tests: many hours, every dimension, and every kind of
change that moves a request's sums after it was logged (retries, ratings set, changed and cleared, signals,
scores set and deleted, properties set afterwards), in batches of random size as the writer applies them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from analysis_data import row
from feedgate.store.ops import (
    REQUEST_COLUMNS,
    DeleteScores,
    InsertRequest,
    PutFeedback,
    PutProperty,
    PutScores,
    WriteOp,
)
from feedgate.store.utc import utc_text

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "o3")
USERS = ("u1", "u2", "u3", "u4", None)
PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
PROMPTS = ("support", "search", None)
SYSTEMS = ("You are helpful.", "Be brief.", None)
FEATURES = ("chat", "code", "search")
TIERS = ("free", "pro")
STATUSES = (200, 200, 200, 200, 201, 302, 400, 429, 500)
SIGNALS = ("copied", "regenerated", "abandoned", "edited")
SCORES = ("helpfulness", "accuracy")


def _attempt(rng: random.Random, request_id: str, when: datetime) -> InsertRequest:
    properties: dict[str, str] = {}
    if rng.random() < 0.7:
        properties["feature"] = rng.choice(FEATURES)
    if rng.random() < 0.5:
        properties["tier"] = rng.choice(TIERS)
    op = row(
        request_id,
        when=when,
        model=rng.choice(MODELS),
        user=rng.choice(USERS),
        duration=None if rng.random() < 0.08 else round(rng.lognormvariate(6.0, 1.2), 3),
        cost=None if rng.random() < 0.2 else rng.uniform(0.0001, 0.05),
        status=rng.choice(STATUSES),
        properties=properties,
        prompt_id=rng.choice(PROMPTS),
        system=rng.choice(SYSTEMS),
        question=f"q {request_id}",
    )
    values = list(op.values)
    values[REQUEST_COLUMNS.index("path")] = rng.choice(PATHS)
    if rng.random() < 0.05:
        values[REQUEST_COLUMNS.index("status")] = None  # no status line: the call failed
    return InsertRequest(tuple(values))


def random_ops(seed: int, start: datetime, hours: int, requests: int) -> list[list[WriteOp]]:
    """Batches of ops over ``hours`` hours from ``start``; each request's feedback follows its first row."""
    rng = random.Random(seed)
    timeline: list[tuple[float, int, WriteOp]] = []  # (order, tiebreak, op)
    order = 0
    for i in range(requests):
        request_id = f"r{seed}-{i}"
        at = rng.uniform(0, hours * 3600)
        when = start + timedelta(seconds=at)
        timeline.append((at, order, _attempt(rng, request_id, when)))
        order += 1
        later = at
        if rng.random() < 0.12:  # a retry: a new attempt, sometimes in another hour or day
            later = min(hours * 3600 - 1, at + rng.uniform(1, 7200))
            timeline.append(
                (later + rng.uniform(0, 60), order, _attempt(rng, request_id, start + timedelta(seconds=later)))
            )
            order += 1
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 5))):
            moment = later + rng.uniform(0, 4 * 3600)
            timeline.append((moment, order, _change(rng, request_id, start + timedelta(seconds=moment))))
            order += 1
    timeline.sort(key=lambda item: (item[0], item[1]))
    ops = [op for _, _, op in timeline]
    batches: list[list[WriteOp]] = []
    while ops:
        size = rng.choice((1, 2, 5, 17, 60))
        batches.append(ops[:size])
        ops = ops[size:]
    return batches


def _change(rng: random.Random, request_id: str, when: datetime) -> WriteOp:
    stamp = utc_text(when)
    kind = rng.random()
    if kind < 0.35:
        rating = rng.choice((True, True, False, None))  # None clears the rating
        return PutFeedback("request", request_id, "explicit", rating, source="test", datetime_utc=stamp)
    if kind < 0.6:
        return PutFeedback(
            "request", request_id, "implicit", rng.random() < 0.4, signal=rng.choice(SIGNALS), source="test"
        )
    if kind < 0.8:
        name = rng.choice(SCORES)
        return PutScores(request_id, {name: (round(rng.uniform(-1, 5), 3), "float")}, datetime_utc=stamp)
    if kind < 0.87:
        return DeleteScores(request_id, None if rng.random() < 0.5 else (rng.choice(SCORES),))
    key = rng.choice(("feature", "feature", "tier"))
    value = rng.choice(FEATURES if key == "feature" else TIERS)
    return PutProperty(request_id, key, value, datetime_utc=stamp)
