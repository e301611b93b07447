"""Adding a batch's sums to the rollup tables: one upsert statement per table, the same in both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from feedgate.store.rollups.cells import NUMBERS, Totals

COST = NUMBERS.index("cost_usd")

_CELL = "hour_utc, dimension, keyed, key"
UPSERT_CELLS = (
    f"INSERT INTO rollup_cells ({_CELL}, {', '.join(NUMBERS)}) "
    f"VALUES ({', '.join('?' for _ in range(4 + len(NUMBERS)))}) "
    f"ON CONFLICT ({_CELL}) DO UPDATE SET "
    + ", ".join(f"{name} = rollup_cells.{name} + excluded.{name}" for name in NUMBERS)
)
UPSERT_NOTES = (
    f"INSERT INTO rollup_notes ({_CELL}, kind, name, count, total) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_CELL}, kind, name) DO UPDATE SET "
    "count = rollup_notes.count + excluded.count, total = rollup_notes.total + excluded.total"
)
UPSERT_LATENCY = (
    f"INSERT INTO rollup_latency ({_CELL}, metric, bucket, count) VALUES (?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_CELL}, metric, bucket) DO UPDATE SET count = rollup_latency.count + excluded.count"
)


class Executor(Protocol):
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


async def write_totals(db: Executor, totals: Totals) -> None:
    cells: list[tuple[Any, ...]] = []
    notes: list[tuple[Any, ...]] = []
    latency: list[tuple[Any, ...]] = []
    for cell, sums in totals.cells().items():
        if any(sums.numbers):
            numbers: list[int | float] = [int(value) for value in sums.numbers]
            numbers[COST] = float(sums.numbers[COST])
            cells.append((*cell, *numbers))
        notes.extend(
            (*cell, kind, name, int(count), float(total))
            for (kind, name), (count, total) in sums.notes.items()
            if count or total
        )
        latency.extend((*cell, metric, bucket, count) for (metric, bucket), count in sums.latency.items() if count)
    for sql, rows in ((UPSERT_CELLS, cells), (UPSERT_NOTES, notes), (UPSERT_LATENCY, latency)):
        if rows:
            await db.executemany(sql, rows)
