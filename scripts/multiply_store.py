"""Make a large SQLite store from a demo store: every request copied ``--times`` over with new IDs.

Why: ``feedgate demo --requests 10000000`` writes through the gateway's writer at about 3,000 requests a second
on a shared 2-core machine, an hour or more; copying a million-request demo store nine more times inside
SQLite takes minutes. Each copy keeps every row's time, model, user, bodies and feedback, with new request IDs
(the first eight hex digits replaced by the copy's number) and new session IDs, so the store holds ``times``
as many requests in the same hours: what a busier deployment of the same traffic would log.

The rollups are multiplied too (every count and sum times ``times``): exactly what ``feedgate rollups
rebuild`` would compute from the copied rows, without reading them. ``feedgate rollups check`` afterwards
compares them with the rows.

    python scripts/multiply_store.py demo1m.db demo10m.db --times 10
    feedgate rollups check --database-url sqlite:///demo10m.db
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time

# The summed columns of each rollup table: a store of N copies holds N times each sum.
ROLLUP_SUMS = {
    "rollup_cells": (
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "durations",
        "positive",
        "negative",
    ),
    "rollup_notes": ("count", "total"),
    "rollup_latency": ("count",),
}


def new_id(column: str, copy: int) -> str:
    """The SQL for a copy's ID: the first eight hex digits become the copy's number."""
    return f"printf('%08x', {copy}) || substr({column}, 9)"


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def copy_rows(db: sqlite3.Connection, table: str, source: str, renamed: dict[str, str], where: str = "") -> None:
    names = [name for name in columns(db, table) if name != "id"]
    chosen = ", ".join(renamed.get(name, name) for name in names)
    db.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {chosen} FROM {source} {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a SQLite store filled by feedgate demo (read only)")
    parser.add_argument("target", help="the new, larger store (overwritten)")
    parser.add_argument("--times", type=int, default=10, help="how many times the requests the result holds")
    args = parser.parse_args()
    started = time.monotonic()
    shutil.copyfile(args.source, args.target)
    db = sqlite3.connect(args.target, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -2000000")  # 2 GB: the request-ID indexes are written at random places
    last = db.execute("SELECT MAX(id) FROM requests").fetchone()[0]
    # The feedback of the original requests, kept aside so each copy copies only those.
    for table in ("feedback", "feedback_events", "scores", "request_properties"):
        db.execute(f"CREATE TEMP TABLE original_{table} AS SELECT * FROM {table}")
    for copy in range(1, args.times):
        db.execute("BEGIN")
        session = f"CASE WHEN session_id IS NULL THEN NULL ELSE {new_id('session_id', copy)} END"
        copy_rows(
            db,
            "requests",
            "requests",
            {"request_id": new_id("request_id", copy), "session_id": session},
            f"WHERE id <= {last}",
        )
        for table in ("feedback", "feedback_events"):
            copy_rows(db, table, f"original_{table}", {"target_id": new_id("target_id", copy)})
        for table in ("scores", "request_properties"):
            copy_rows(db, table, f"original_{table}", {"request_id": new_id("request_id", copy)})
        db.execute("COMMIT")
        print(f"copy {copy} of {args.times - 1} done at {time.monotonic() - started:.0f} s", flush=True)
    db.execute("BEGIN")
    for table, sums in ROLLUP_SUMS.items():
        db.execute(f"UPDATE {table} SET " + ", ".join(f"{name} = {name} * {args.times}" for name in sums))
    db.execute("COMMIT")
    count = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print(f"{count:,} rows in {args.target} after {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
