"""``feedgate demo``: the synthetic store a newcomer tries every command on holds what the command says it wrote.

The data is made by a child process and written through the store's own ``apply``, so this runs the
command end to end into a SQLite file, then reads it back with the store and with the analysis commands.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from feedgate.cli import main
from feedgate.config import load_settings
from feedgate.store import make_store


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status = main(list(argv))
    return status, orjson.loads(capsys.readouterr().out)


async def count(url: str, sql: str) -> int:
    store = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await store.open()
    try:
        rows = await store.fetch(sql)
        return int(rows[0][0])
    finally:
        await store.close()


def test_demo_writes_what_it_reports_and_plants_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    status, summary = run_json(
        capsys, "demo", "--requests", "3000", "--rated-share", "0.6", "--database-url", url, "--json"
    )
    assert status == 0
    # Requests sent again (a retried 429, a regenerated answer) count once each, their attempts apart.
    assert summary["requests"] >= 3000 and summary["attempts"] >= summary["requests"]
    assert asyncio.run(count(url, "SELECT COUNT(*) FROM requests")) == summary["attempts"]
    assert asyncio.run(count(url, "SELECT COUNT(DISTINCT request_id) FROM requests")) == summary["requests"]
    assert 0.5 < summary["ratings"] / summary["requests"] < 0.7
    assert summary["signals"] > 0 and summary["scores"] > 0
    assert summary["store_bytes"] > 0 and summary["bytes_per_request"] > 0

    status, stats = run_json(capsys, "stats", "--by", "model", "--database-url", url, "--json")
    assert status == 0
    assert stats["overall"]["requests"] == summary["requests"]
    assert {group["key"] for group in stats["groups"]} == {
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
    }

    # The planted regression: support answers got worse in the last days. `regressions` exits 1 on finding one.
    status, report = run_json(capsys, "regressions", "--database-url", url, "--json")
    assert status == 1
    found = {(r["dimension"], r["key"], r["metric"]) for r in report["regressions"]}
    assert ("property:feature", "support", "positive_rate") in found


def test_the_same_seed_gives_the_same_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name}.db"
        status, summary = run_json(capsys, "demo", "--requests", "500", "--seed", "11", "--database-url", url, "--json")
        assert status == 0
        _, stats = run_json(capsys, "stats", "--by", "model", "--database-url", url, "--json")
        # Time and the file's size in pages (how SQLite happened to allocate them) are not the data.
        for varying in ("seconds", "store_bytes", "bytes_per_request"):
            summary.pop(varying)
        answers.append((summary, stats["groups"]))
    assert answers[0] == answers[1]
