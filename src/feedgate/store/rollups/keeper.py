"""The rollups as a store keeps them: registered when it opens, changed in every transaction that changes a
request's statistics, rebuilt window by window when asked.

``complete_from_utc`` in ``rollup_dimensions`` is the promise readers rely on: from that hour on, the sums of
that dimension equal what the rows say. A dimension is registered as complete from the next hour when it
first appears (the current hour already has rows the writer did not sum), or from the start on a store
with no rows. Opening a store with rollups off withdraws every promise: the writer stops keeping them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from feedgate.store.ops import RebuildRollups, RegisterRollups, SetRollupCoverage, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.rollups.build import dimensions, rebuild, rebuild_window
from feedgate.store.rollups.cells import hour_of
from feedgate.store.rollups.changes import Reader, RollupChange
from feedgate.store.utc import parse_utc_text, utc_text

log = logging.getLogger("feedgate.rollups")

_SET_COVERAGE = (
    "INSERT INTO rollup_dimensions (dimension, complete_from_utc) VALUES (?, ?) "
    "ON CONFLICT (dimension) DO UPDATE SET complete_from_utc = CASE "
    "WHEN excluded.complete_from_utc < rollup_dimensions.complete_from_utc THEN excluded.complete_from_utc "
    "ELSE rollup_dimensions.complete_from_utc END"
)


def next_hour(now: datetime | None = None) -> str:
    moment = parse_utc_text(hour_of(utc_text(now or datetime.now(UTC))))
    return utc_text(moment + timedelta(hours=1))


class RollupKeeper:
    """What a store with rollups on does around each transaction (``properties``: the rolled-up properties)."""

    def __init__(self, properties: Sequence[str]) -> None:
        self.properties = tuple(dict.fromkeys(properties))

    async def register(self, db: Reader) -> None:
        """Note the dimensions this store keeps: one new to the store is complete from the next hour."""
        names = dimensions(self.properties)
        known = {row[0] for row in await db.fetch("SELECT dimension FROM rollup_dimensions")}
        fresh = [name for name in names if name not in known]
        if not fresh:
            return
        empty = not await db.fetch("SELECT 1 FROM requests LIMIT 1")
        start = "" if empty else next_hour()
        for name in fresh:
            # Sums a dimension kept before it was dropped and added again are stale: start it clean.
            for table in ("rollup_cells", "rollup_notes", "rollup_latency"):
                await db.execute(f"DELETE FROM {table} WHERE dimension = ?", (name,))
            await db.execute(_SET_COVERAGE, (name, start))

    @staticmethod
    async def withdraw(db: Reader) -> None:
        """Rollups are off: nothing keeps them from now on, so no reader may trust them."""
        await db.execute("DELETE FROM rollup_dimensions")

    async def begin(self, db: Reader, ops: Sequence[WriteOp]) -> RollupChange | None:
        if not RollupChange.touches(ops):
            return None
        change = RollupChange(self.properties)
        await change.begin(db, ops)
        return change

    async def finish(
        self, db: Reader, change: RollupChange | None, ops: Sequence[WriteOp], derived: Sequence[tuple[str, str, bool]]
    ) -> None:
        if change is not None:
            await change.finish(db, derived)
        for op in ops:
            if isinstance(op, RegisterRollups):
                await self.register(db)
            elif isinstance(op, RebuildRollups):
                await rebuild_window(db, op, self.properties)
            elif isinstance(op, SetRollupCoverage):
                for name in dimensions(self.properties):
                    await db.execute(_SET_COVERAGE, (name, op.from_utc))


def rollups_change(ops: Sequence[WriteOp]) -> bool:
    """Whether applying ``ops`` changes the rollups (and so must take its turn with other instances)."""
    kept = RebuildRollups | SetRollupCoverage | RegisterRollups
    return RollupChange.touches(ops) or any(isinstance(op, kept) for op in ops)


async def finish_rollups(
    keeper: RollupKeeper | None,
    db: Reader,
    change: RollupChange | None,
    ops: Sequence[WriteOp],
    derived: Sequence[tuple[str, str, bool]],
) -> None:
    """The end of a store's transaction: the batch's change to the rollups, or, with rollups off, the
    withdrawal a ``RegisterRollups`` asks for."""
    if keeper is not None:
        await keeper.finish(db, change, ops, derived)
    elif any(isinstance(op, RegisterRollups) for op in ops):
        await RollupKeeper.withdraw(db)


async def open_rollups(store: Store, keeper: RollupKeeper | None, *, build: bool) -> None:
    """Register the store's dimensions; ``build``: the rollups table was just created on a store with rows,
    so the sums of those rows are computed now, once (the migration's build), logging its progress."""
    await store.apply([RegisterRollups()])
    if keeper is None or not build or not await store.fetch("SELECT 1 FROM requests LIMIT 1"):
        return
    log.info("rollups: computing the per-hour sums of the requests already logged (once)")
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = min(10, done * 10 // max(total, 1))
        if tenth > shown[0]:
            shown[0] = tenth
            log.info("rollups: %d%% (about %d of %d requests)", tenth * 10, min(done, total), total)

    async def submit(op: WriteOp) -> None:
        await store.apply([op])

    await rebuild(store, submit, None, progress)
    log.info("rollups: built")
