"""What one request adds to the rollups: its cells and their sums, and how sums of many requests add up.

A request counts by its latest attempt (as every statistic does), in the hour of that attempt's
``datetime_utc``, once under each dimension: ``all``, ``model``, ``prompt``, ``user``, ``path``, ``provider``,
``status`` (``2xx``...``5xx``, ``failed`` without a status line) and ``property:NAME`` for each name in
``analysis.properties``. A request without a value for a dimension counts under that dimension's unkeyed
cell, as the "no value" group the row path reports.

Every figure is a sum, so a change to a request (a rating, a score, a property set later, a new attempt) is
its contribution after the change minus its contribution before: ``Totals.add(contribution, sign)``.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from feedgate.store.bounds import MAX_EXACT_INT

FIXED_DIMENSIONS = ("all", "model", "prompt", "user", "path", "provider", "status")
# The sums of a cell, in this order in ``Sums.numbers`` and in ``rollup_cells``' columns.
NUMBERS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd", "durations", "positive", "negative")
_REQUESTS, _ERRORS, _INPUT, _OUTPUT, _COST, _DURATIONS, _POSITIVE, _NEGATIVE = range(len(NUMBERS))

# Latency buckets: 8 per doubling, so a bucket spans a factor of 2**(1/8) (9.05 %). A percentile read from
# them is interpolated between bucket middles and lies within a factor 2**(1/16) of the exact one: 4.4 %.
BUCKETS_PER_DOUBLING = 8
ZERO_BUCKET = -(10**6)  # durations of 0 ms (or less): an answer from the cache, a clock that stood still


def bucket_of(ms: float) -> int:
    if ms <= 0:
        return ZERO_BUCKET
    return math.floor(math.log2(ms) * BUCKETS_PER_DOUBLING)


def bucket_middle(bucket: int) -> float:
    """The value a bucket stands for: its geometric middle."""
    if bucket == ZERO_BUCKET:
        return 0.0
    return float(2.0 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING))


def hour_of(datetime_utc: str) -> str:
    """The start of the hour of a ``utc_text`` time, itself as ``utc_text``."""
    return datetime_utc[:13] + ":00:00.000000Z"


def status_key(status: int | None) -> str:
    return "failed" if status is None else f"{status // 100}xx"


@dataclass(slots=True)
class Attempt:
    """The fields of a request's latest attempt that rollups read."""

    datetime_utc: str
    model: str | None
    prompt: str | None  # prompt_id, else prompt_fingerprint
    user_id: str | None
    path: str | None
    provider: str | None
    status: int | None
    properties_json: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    duration_ms: float | None
    ttft_ms: float | None


@dataclass(slots=True)
class RequestState:
    """A request as the statistics see it: its latest attempt and its current feedback."""

    latest: Attempt | None = None
    rating: bool | None = None  # the current explicit rating
    signals: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (name, positive) -> events
    scores: dict[str, float] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)  # set after the fact: they win over headers

    def copy(self) -> RequestState:
        return RequestState(self.latest, self.rating, Counter(self.signals), dict(self.scores), dict(self.properties))


def property_value(state: RequestState, attempt: Attempt, name: str) -> str | None:
    if name in state.properties:
        return state.properties[name]
    if not attempt.properties_json or name not in attempt.properties_json:
        return None
    try:
        sent = orjson.loads(attempt.properties_json)
    except orjson.JSONDecodeError:
        return None
    value = sent.get(name) if isinstance(sent, dict) else None
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def bounded(value: float) -> float:
    return max(-MAX_EXACT_INT, min(MAX_EXACT_INT, value))


@dataclass(slots=True)
class Sums:
    """The sums of one cell (or of one request, before it is spread over its cells)."""

    numbers: list[float] = field(default_factory=lambda: [0] * len(NUMBERS))
    # (kind, name) -> [count, total]; kinds: signal+ and signal- (events by polarity), signal_requests
    # (requests with at least one event of the signal), score (count and sum of values).
    notes: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    latency: dict[tuple[str, int], int] = field(default_factory=dict)  # (duration | ttft, bucket) -> requests

    def add(self, other: Sums, sign: int) -> None:
        # Plain dicts and map(): this runs for every cell of every request a rebuild reads.
        self.numbers = list(map(operator.add if sign > 0 else operator.sub, self.numbers, other.numbers))
        if other.notes:
            notes = self.notes
            for key, (count, total) in other.notes.items():
                note = notes.get(key)
                if note is None:
                    notes[key] = [sign * count, sign * total]
                else:
                    note[0] += sign * count
                    note[1] += sign * total
        latency = self.latency
        for slot, events in other.latency.items():
            latency[slot] = latency.get(slot, 0) + sign * events

    def copy(self) -> Sums:
        return Sums(list(self.numbers), {key: list(pair) for key, pair in self.notes.items()}, dict(self.latency))

    def is_zero(self) -> bool:
        return (
            not any(self.numbers)
            and not any(count or total for count, total in self.notes.values())
            and not any(self.latency.values())
        )


def request_sums(state: RequestState, attempt: Attempt) -> Sums:
    """What one request adds to each of its cells."""
    numbers: list[float] = [1, 0, 0, 0, 0, 0, 0, 0]
    if attempt.status is None or attempt.status >= 400:
        numbers[_ERRORS] = 1
    if attempt.input_tokens:
        numbers[_INPUT] = attempt.input_tokens
    if attempt.output_tokens:
        numbers[_OUTPUT] = attempt.output_tokens
    if attempt.cost_usd:
        numbers[_COST] = attempt.cost_usd
    if state.rating is True:
        numbers[_POSITIVE] = 1
    elif state.rating is False:
        numbers[_NEGATIVE] = 1
    sums = Sums(numbers)
    if attempt.duration_ms is not None:
        numbers[_DURATIONS] = 1
        sums.latency[("duration", bucket_of(attempt.duration_ms))] = 1
    if attempt.ttft_ms is not None:
        sums.latency[("ttft", bucket_of(attempt.ttft_ms))] = 1
    if state.signals:
        carried: set[str] = set()
        for (name, positive), events in state.signals.items():
            sums.notes[("signal+" if positive else "signal-", name)] = [events, 0]
            carried.add(name)
        for name in carried:
            sums.notes[("signal_requests", name)] = [1, 0]
    for name, value in state.scores.items():
        sums.notes[("score", name)] = [1, bounded(value)]
    return sums


def _add_plain(sums: Sums, attempt: Attempt) -> None:
    """``request_sums`` of a request without feedback, added in place: the writer's common case."""
    numbers = sums.numbers
    numbers[_REQUESTS] += 1
    if attempt.status is None or attempt.status >= 400:
        numbers[_ERRORS] += 1
    if attempt.input_tokens:
        numbers[_INPUT] += attempt.input_tokens
    if attempt.output_tokens:
        numbers[_OUTPUT] += attempt.output_tokens
    if attempt.cost_usd:
        numbers[_COST] += attempt.cost_usd
    latency = sums.latency
    if attempt.duration_ms is not None:
        numbers[_DURATIONS] += 1
        slot = ("duration", bucket_of(attempt.duration_ms))
        latency[slot] = latency.get(slot, 0) + 1
    if attempt.ttft_ms is not None:
        slot = ("ttft", bucket_of(attempt.ttft_ms))
        latency[slot] = latency.get(slot, 0) + 1


CellKey = tuple[str, str, int, str]  # (hour_utc, dimension, keyed, key)


class Totals:
    """Sums per cell, gathered over a batch: what the writer adds to (or takes from) the rollup tables."""

    def __init__(self, properties: tuple[str, ...]) -> None:
        self.properties = properties
        # Requests of a batch mostly share their cells (one model, one path, no user): they are summed per
        # combination of keys first, and spread over the cells once per combination.
        self._combos: dict[tuple[str | None, ...], Sums] = {}

    def add(self, state: RequestState, sign: int) -> None:
        attempt = state.latest
        if attempt is None:
            return
        combo = (
            hour_of(attempt.datetime_utc),
            attempt.model,
            attempt.prompt,
            attempt.user_id,
            attempt.path,
            attempt.provider,
            status_key(attempt.status),
            *(property_value(state, attempt, name) for name in self.properties),
        )
        sums = self._combos.get(combo)
        if sums is None:
            sums = self._combos[combo] = Sums()
        if state.rating is None and not state.signals and not state.scores and sign == 1:
            _add_plain(sums, attempt)  # most rows: no feedback yet, nothing to build
        else:
            sums.add(request_sums(state, attempt), sign)

    def cells(self) -> dict[CellKey, Sums]:
        dimensions = (*FIXED_DIMENSIONS[1:], *(f"property:{name}" for name in self.properties))
        out: dict[CellKey, Sums] = {}
        for combo, sums in self._combos.items():
            if sums.is_zero():
                continue
            hour = str(combo[0])
            keys: list[tuple[str, str | None]] = [("all", "")]
            keys += zip(dimensions, combo[1:], strict=True)
            for dimension, key in keys:
                cell = (hour, dimension, 0 if key is None else 1, key or "")
                into = out.get(cell)
                if into is None:
                    out[cell] = sums.copy()
                else:
                    into.add(sums, 1)
        return out


def attempt_from(values: dict[str, Any]) -> Attempt:
    """An ``Attempt`` from a request row's columns (by name)."""
    return Attempt(
        datetime_utc=values["datetime_utc"],
        model=values["model"],
        prompt=values["prompt_id"] if values["prompt_id"] is not None else values["prompt_fingerprint"],
        user_id=values["user_id"],
        path=values["path"],
        provider=values["provider"],
        status=values["status"],
        properties_json=values["properties_json"],
        input_tokens=values["input_tokens"],
        output_tokens=values["output_tokens"],
        cost_usd=values["cost_usd"],
        duration_ms=values["duration_ms"],
        ttft_ms=values["ttft_ms"],
    )


ATTEMPT_COLUMNS = (
    "datetime_utc",
    "model",
    "prompt_id",
    "prompt_fingerprint",
    "user_id",
    "path",
    "provider",
    "status",
    "properties_json",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "duration_ms",
    "ttft_ms",
)
