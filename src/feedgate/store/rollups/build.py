"""Recomputing rollups from rows: for a store written before rollups existed (the migration's build), for a
property added to ``analysis.properties`` later, and for ``feedgate rollups rebuild``.

The work is cut into windows of whole hours, each one ``RebuildRollups`` op through the single writer: its
transaction deletes the window's sums and recomputes them from the rows with the same state reader and the
same definition the writer uses for each batch (``changes.read_states``, ``cells.Totals``), so the two
cannot disagree, and a gateway logging at the same time only waits for one window at a time.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from feedgate.store.ops import RebuildRollups, SetRollupCoverage, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.rollups.cells import FIXED_DIMENSIONS, NUMBERS, CellKey, Sums, Totals, hour_of
from feedgate.store.rollups.changes import Reader, window_states
from feedgate.store.rollups.upserts import write_totals
from feedgate.store.utc import parse_utc_text, utc_text

WINDOW_ROWS = 20_000  # rows per window's transaction: a fraction of a second of the writer's time
_TABLES = ("rollup_cells", "rollup_notes", "rollup_latency")
Progress = Callable[[int, int], None]  # (rows done, rows in all)


def dimensions(properties: Sequence[str]) -> list[str]:
    return [*FIXED_DIMENSIONS, *(f"property:{name}" for name in properties)]


async def rebuild_window(db: Reader, op: RebuildRollups, properties: tuple[str, ...]) -> None:
    """Inside the writer's transaction: the window's sums, deleted and recomputed from its rows."""
    names = dimensions(properties)
    marks = ", ".join("?" for _ in names)
    for table in _TABLES:
        await db.execute(
            f"DELETE FROM {table} WHERE dimension IN ({marks}) AND hour_utc >= ? AND hour_utc < ?",
            (*names, op.from_utc, op.until_utc),
        )
    totals = Totals(properties)
    for state in (await window_states(db, op.from_utc, op.until_utc)).values():
        totals.add(state, 1)
    await write_totals(db, totals)


def _hour(moment: str) -> datetime:
    return parse_utc_text(hour_of(moment))


async def plan_windows(store: Store, since_utc: str | None, until_utc: str | None = None) -> list[tuple[str, str, int]]:
    """Windows of whole hours covering the rows from ``since_utc`` (all rows when None) to ``until_utc``:
    ``(from, until, about how many rows)``."""
    low = hour_of(since_utc) if since_utc else ""
    high = until_utc or "9999"
    found = await store.fetch(
        "SELECT MIN(datetime_utc), MAX(datetime_utc), COUNT(*) FROM requests "
        "WHERE datetime_utc >= ? AND datetime_utc < ?",
        (low, high),
    )
    first, last, count = found[0] if found else (None, None, 0)
    if not first or not last or not count:
        return []
    start, end = _hour(first), _hour(last) + timedelta(hours=1)
    if since_utc:
        start = max(start, _hour(since_utc))
    hours = max(1, int((end - start) / timedelta(hours=1)))
    per_hour = count / hours
    step = timedelta(hours=max(1, min(24 * 7, int(WINDOW_ROWS / max(per_hour, 1.0)))))
    windows: list[tuple[str, str, int]] = []
    moment = start
    while moment < end:
        upper = min(moment + step, end)
        windows.append((utc_text(moment), utc_text(upper), round(per_hour * ((upper - moment) / timedelta(hours=1)))))
        moment = upper
    return windows


async def rebuild(
    store: Store,
    submit: Callable[[WriteOp], Awaitable[None]],
    since_utc: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Recompute every window from ``since_utc`` (all when None) and widen the coverage to it.

    ``submit`` applies one op in its own transaction (the writer's, or the store's own ``apply``).
    Returns the number of windows rebuilt.
    """
    windows = await plan_windows(store, since_utc)
    total = sum(rows for _, _, rows in windows)
    done = 0
    for low, high, rows in windows:
        await submit(RebuildRollups(low, high))
        done += rows
        if progress is not None:
            progress(done, total)
    # Rows logged while the windows were rebuilt were summed by the writer as they landed.
    await submit(SetRollupCoverage(hour_of(since_utc) if since_utc else ""))
    return len(windows)


async def window_totals(store: Store, from_utc: str, until_utc: str, properties: tuple[str, ...]) -> Totals:
    """What the rows of a window sum to, read outside any transaction (for ``check``)."""
    totals = Totals(properties)
    for state in (await window_states(store, from_utc, until_utc)).values():
        totals.add(state, 1)
    return totals


async def stored_cells(store: Store, from_utc: str, until_utc: str, names: list[str]) -> dict[CellKey, Sums]:
    """The rollups of a window as stored (cells whose sums are all zero left out)."""
    marks = ", ".join("?" for _ in names)
    where = f"WHERE dimension IN ({marks}) AND hour_utc >= ? AND hour_utc < ?"
    params = (*names, from_utc, until_utc)
    out: dict[CellKey, Sums] = {}

    def cell(row: tuple[Any, ...]) -> Sums:
        key: CellKey = (row[1], row[0], int(row[2]), row[3])
        return out.setdefault(key, Sums())

    for row in await store.fetch(
        f"SELECT dimension, hour_utc, keyed, key, {', '.join(NUMBERS)} FROM rollup_cells {where}", params
    ):
        cell(row).numbers = list(row[4:])
    for row in await store.fetch(
        f"SELECT dimension, hour_utc, keyed, key, kind, name, count, total FROM rollup_notes {where}", params
    ):
        cell(row).notes[(row[4], row[5])] = [row[6], row[7]]
    for row in await store.fetch(
        f"SELECT dimension, hour_utc, keyed, key, metric, bucket, count FROM rollup_latency {where}", params
    ):
        cell(row).latency[(row[4], int(row[5]))] = int(row[6])
    return {key: sums for key, sums in out.items() if not _zero(sums)}


def _zero(sums: Sums) -> bool:
    return (
        not any(abs(value) > 1e-9 for value in sums.numbers)
        and not any(abs(count) > 1e-9 or abs(total) > 1e-9 for count, total in sums.notes.values())
        and not any(sums.latency.values())
    )


def differences(stored: dict[CellKey, Sums], computed: dict[CellKey, Sums]) -> list[str]:
    """Where the stored sums and the sums recomputed from rows disagree (costs and scores to 1e-9 relative)."""
    out: list[str] = []
    for key in sorted(set(stored) | set(computed)):
        mine, theirs = stored.get(key, Sums()), computed.get(key, Sums())
        where = f"{key[1]} {key[0]} {'(none)' if not key[2] else repr(key[3])}"
        for name, a, b in zip(NUMBERS, mine.numbers, theirs.numbers, strict=True):
            if not _close(a, b):
                out.append(f"{where}: {name} is {a} in the rollups, {b} in the rows")
        for note in sorted(set(mine.notes) | set(theirs.notes)):
            a_pair, b_pair = mine.notes.get(note, [0, 0]), theirs.notes.get(note, [0, 0])
            if not (_close(a_pair[0], b_pair[0]) and _close(a_pair[1], b_pair[1])):
                out.append(f"{where}: {note[0]} {note[1]!r} is {a_pair} in the rollups, {b_pair} in the rows")
        for slot in sorted(set(mine.latency) | set(theirs.latency)):
            if mine.latency.get(slot, 0) != theirs.latency.get(slot, 0):
                out.append(
                    f"{where}: {slot[0]} bucket {slot[1]} holds {mine.latency.get(slot, 0)} in the rollups, "
                    f"{theirs.latency.get(slot, 0)} in the rows"
                )
    return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


async def check(
    store: Store, properties: tuple[str, ...], hours: int = 24, seed: int | None = None
) -> tuple[int, list[str]]:
    """Compare the stored rollups with sums recomputed from rows, on a random sample of ``hours`` hours the
    rollups cover (the current hour left out: rows are still landing in it). Returns (hours checked, differences)."""
    coverage = {
        row[0]: row[1] for row in await store.fetch("SELECT dimension, complete_from_utc FROM rollup_dimensions")
    }
    names = [name for name in dimensions(properties) if name in coverage]
    if not names:
        return 0, []
    since = max(coverage[name] for name in names)
    current = hour_of(utc_text(datetime.now(UTC)))
    found = await store.fetch(
        "SELECT DISTINCT hour_utc FROM rollup_cells WHERE dimension = 'all' AND hour_utc >= ? AND hour_utc < ?",
        (since, current),
    )
    candidates = sorted(row[0] for row in found)
    picked = random.Random(seed).sample(candidates, min(hours, len(candidates)))
    problems: list[str] = []
    for hour in sorted(picked):
        until = utc_text(parse_utc_text(hour) + timedelta(hours=1))
        computed = (await window_totals(store, hour, until, properties)).cells()
        computed = {key: sums for key, sums in computed.items() if key[1] in names and not _zero(sums)}
        problems += differences(await stored_cells(store, hour, until, names), computed)
    return len(picked), problems
