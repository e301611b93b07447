"""The partial hours at the edges of a range, summed the way the writer sums whole hours.

A range such as "the last 30 days" starts and ends inside an hour. Those partial hours are read from rows,
but not with the row path's queries: those start from the feedback tables and suit ranges of days, and
spent a quarter of a second on a half-hour edge of a million-request store. Here the requests whose latest
attempt falls in the edge are read from the time index (``window_states``), summed into cells with the
writer's own definition (``cells.Totals``), and the cells the answer needs are picked out of them, so an
edge adds exactly what its hour would have added to the rollups.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

from feedgate.store.protocol import Store
from feedgate.store.reads.groups import GroupCounts
from feedgate.store.reads.rollup_reads import Cells, Key
from feedgate.store.reads.windows import Rated, WindowCounts
from feedgate.store.rollups.cells import NUMBERS, CellKey, Sums, Totals
from feedgate.store.rollups.changes import window_states

_REQUESTS, _COST, _DURATIONS, _POSITIVE, _NEGATIVE = (
    NUMBERS.index(name) for name in ("requests", "cost_usd", "durations", "positive", "negative")
)
Edges = dict[CellKey, Sums]


async def edge_cells(store: Store, ranges: Sequence[tuple[str, str]], properties: Sequence[str]) -> Edges:
    """The cells the requests of ``ranges`` (``[start, end)`` pairs) add up to."""
    totals = Totals(tuple(properties))
    for start, end in ranges:
        for state in (await window_states(store, start, end)).values():
            totals.add(state, 1)
    return totals.cells()


def picked(edges: Edges, cells: Cells) -> Iterator[tuple[Key, Sums]]:
    """The sums of the cells ``cells`` names, each with its group, as ``rollup_reads`` groups stored cells."""
    for (hour, dimension, keyed, key), sums in edges.items():
        if dimension != cells.dimension or (cells.key is not None and (not keyed or key != cells.key)):
            continue
        group: Key = None if cells.by is None else hour[:10] if cells.by == "day" else (key if keyed else None)
        yield group, sums


def counts_of(sums: Sums) -> GroupCounts:
    numbers = sums.numbers
    counts = GroupCounts(
        requests=int(numbers[_REQUESTS]),
        durations=int(numbers[_DURATIONS]),
        cost=float(numbers[_COST]),
        positive=int(numbers[_POSITIVE]),
        negative=int(numbers[_NEGATIVE]),
    )
    for (kind, name), (count, total) in sums.notes.items():
        if kind == "score":
            counts.score_sums[name] = (int(count), float(total))
        elif kind in ("signal+", "signal-"):
            signal = counts.signals.setdefault(name, {"positive": 0, "negative": 0})
            signal["positive" if kind == "signal+" else "negative"] += int(count)
    return counts


def durations_of(sums: Sums) -> Counter[int]:
    return Counter({bucket: count for (metric, bucket), count in sums.latency.items() if metric == "duration"})


def rated_of(sums: Sums) -> Rated:
    return Rated(int(sums.numbers[_POSITIVE]), int(sums.numbers[_NEGATIVE]))


def window_of(sums: Sums, signals: Sequence[str]) -> WindowCounts:
    positive, negative = int(sums.numbers[_POSITIVE]), int(sums.numbers[_NEGATIVE])
    counts = WindowCounts(requests=int(sums.numbers[_REQUESTS]), rated=positive + negative, positive=positive)
    for name in signals:
        carried = sums.notes.get(("signal_requests", name))
        if carried is not None and carried[0]:
            counts.signal_requests[name] = int(carried[0])
    return counts


def cut(ranges: Sequence[tuple[str, str]], at: str) -> list[tuple[str, str]]:
    """``ranges`` split at ``at``, so each part lies wholly before or after it."""
    out: list[tuple[str, str]] = []
    for start, end in ranges:
        if start < at < end:
            out += [(start, at), (at, end)]
        else:
            out.append((start, end))
    return out
