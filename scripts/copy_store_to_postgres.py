"""Copy a SQLite store into a new PostgreSQL store: every table, row for row, rollups included.

Why: the analysis benchmark needs PostgreSQL stores of the same traffic as its SQLite ones, and filling one
with ``feedgate demo`` runs the generator and the writer again (40 minutes for a million requests on a shared
2-core machine); COPY moves the rows already made in minutes. The target is migrated by feedgate itself
first, so its schema is exactly what ``feedgate serve`` makes; then each table is copied with COPY in
batches and the identity columns continue after the copied IDs.

    python scripts/copy_store_to_postgres.py demo1m.db postgresql://postgres@127.0.0.1:5432/bench1m
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from feedgate.config import load_settings
from feedgate.store import make_store

BATCH = 5_000
SKIPPED = {"feedgate_migrations", "feedgate_runs"}  # the target's own, written when it was migrated


def converter(pg_type: str) -> Callable[[Any], Any]:
    """SQLite keeps what it was given; PostgreSQL wants each column's own Python type."""
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v: None if v is None else int(v)
    if pg_type in ("double precision", "real", "numeric"):
        return lambda v: None if v is None else float(v)
    if pg_type == "bytea":
        return lambda v: v.encode() if isinstance(v, str) else v
    if pg_type == "boolean":
        return lambda v: None if v is None else bool(v)
    return lambda v: v.decode() if isinstance(v, bytes) else v


async def copy(source: str, url: str) -> None:
    store = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await store.open()  # migrates the empty target
    await store.close()
    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    pg = await asyncpg.connect(url)
    try:
        tables = [
            row[0]
            for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            if row[0] not in SKIPPED
        ]
        for table in tables:
            started = time.monotonic()
            found = await pg.fetch(
                "SELECT column_name, data_type, is_identity FROM information_schema.columns WHERE table_name = $1 "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                table,
            )
            names = [r["column_name"] for r in found]
            convert = [converter(r["data_type"]) for r in found]
            await pg.execute(f"TRUNCATE {table}")
            cursor = lite.execute(f"SELECT {', '.join(names)} FROM {table}")
            copied = 0
            while rows := cursor.fetchmany(BATCH):
                records = [tuple(c(v) for c, v in zip(convert, row, strict=True)) for row in rows]
                await pg.copy_records_to_table(table, records=records, columns=names)
                copied += len(records)
            for identity in (r["column_name"] for r in found if r["is_identity"] == "YES"):
                last = f"GREATEST((SELECT MAX({identity}) FROM {table}), 1)"
                await pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{identity}'), {last})")
            print(f"{table}: {copied:,} rows in {time.monotonic() - started:.0f} s", flush=True)
        await pg.execute("ANALYZE")
    finally:
        await pg.close()
        lite.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the SQLite store's file (read only)")
    parser.add_argument("url", help="an empty PostgreSQL database, postgresql://...")
    args = parser.parse_args()
    asyncio.run(copy(args.source, args.url))


if __name__ == "__main__":
    main()
