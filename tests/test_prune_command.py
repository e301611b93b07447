"""``feedgate prune``: a dry run counts, a real run deletes and gives the space back, bad input says why."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from feedgate.config import load_settings
from feedgate.store import make_store
from feedgate.store.ops import CreateDataset, PutFeedback
from pgschema import Schemas
from test_retention import row


def prune(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedgate", "prune", *flags, "--database-url", url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def summary(url: str, *flags: str) -> dict[str, Any]:
    done = prune(url, *flags, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


async def seed(url: str, old: int, new: int) -> None:
    store = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await store.open()
    body = b'{"messages": [{"role": "user", "content": "' + b"x" * 6000 + b'"}]}'
    await store.apply([row(f"old-{n}", 100, body) for n in range(old)] + [row(f"new-{n}", 1, body) for n in range(new)])
    await store.apply(
        [
            PutFeedback("request", "old-0", "explicit", True),
            CreateDataset("d", "kept", "helicone", request_ids=["old-1"]),
        ]
    )
    await store.close()


def file_bytes(path: Path) -> int:
    return sum(os.path.getsize(f"{path}{suffix}") for suffix in ("", "-wal") if os.path.exists(f"{path}{suffix}"))


async def test_dry_run_counts_then_the_real_run_deletes_and_shrinks_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    await seed(url, old=3000, new=200)
    size_before = file_bytes(path)

    dry = summary(url, "--before", "30d", "--dry-run")
    assert (dry["requests"], dry["kept_for_datasets"], dry["feedback"]) == (2999, 1, 1)
    assert file_bytes(path) == size_before

    done = summary(url, "--before", "30d")
    assert (done["requests"], done["feedback"], done["feedback_events"]) == (2999, 1, 1)
    assert done["auto_vacuum"] == "incremental" and done["reclaimed_mb"] > 15
    # Nearly all of the 3,000 old rows' pages went back to the file system, not just to the free list.
    assert file_bytes(path) < size_before * 0.2
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM requests").fetchone() == (201,)


async def test_a_store_created_before_incremental_vacuum_needs_one_full_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    await seed(url, old=2000, new=100)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=NONE")
    db.execute("VACUUM")  # as feedgate created stores until now
    db.close()

    done = prune(url, "--before", "30d")
    assert done.returncode == 0, done.stderr
    assert "feedgate prune --vacuum" in done.stdout  # the freed pages stay inside the file: says what to do
    size_pruned = file_bytes(path)

    vacuumed = summary(url, "--vacuum")
    assert vacuumed["auto_vacuum"] == "incremental" and vacuumed["reclaimed_mb"] > 10
    assert file_bytes(path) < size_pruned * 0.3


def test_a_bad_before_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    done = prune(url, "--before", "last tuesday")
    assert done.returncode == 2
    assert "--before" in done.stderr and "90d" in done.stderr and "Traceback" not in done.stderr
    done = prune(url)
    assert done.returncode == 2 and "--before" in done.stderr


async def test_prune_on_postgresql_counts_deletes_and_leaves_space_to_autovacuum(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    await seed(url, old=300, new=20)
    dry = summary(url, "--before", "30d", "--dry-run")
    assert (dry["requests"], dry["kept_for_datasets"], dry["feedback"]) == (299, 1, 1)
    done = prune(url, "--before", "30d")
    assert done.returncode == 0, done.stderr
    assert "deleted 299 requests" in done.stdout and "autovacuum" in done.stdout
    assert summary(url, "--before", "30d")["requests"] == 0
    vacuum = prune(url, "--vacuum")
    assert vacuum.returncode == 2 and "SQLite" in vacuum.stderr
