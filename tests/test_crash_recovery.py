"""kill -9 of a real ``feedgate serve``: what it held is either written from the spool at the next start or, without
a spool, said to be lost (logged and listed on /readyz), never lost in silence; and nothing is written twice."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from serving import serving

CALLS = 30


async def answered_calls(url: str) -> list[str]:
    ids = []
    async with aiohttp.ClientSession() as http:
        for n in range(CALLS):
            messages = [{"role": "user", "content": f"echo: {n}"}]
            body = {"model": "gpt-4o-mini", "messages": messages, "stream": n % 2 == 0}
            headers = {"Authorization": "Bearer sk-x"}
            async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200
                await r.read()
                ids.append(r.headers["Helicone-Id"])
    return ids


def stored(db: Path, ids: list[str]) -> dict[str, int]:
    """Attempts logged per request ID."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT request_id, COUNT(*) FROM requests WHERE request_id IN ({', '.join('?' for _ in ids)}) "
            "GROUP BY request_id",
            ids,
        ).fetchall()
    return dict(rows)


async def killed(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def readyz(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as r:
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def stderr_until(proc: asyncio.subprocess.Process, found: Callable[[str], bool]) -> str:
    assert proc.stderr is not None
    seen = ""
    async with asyncio.timeout(15):
        while not found(seen):
            seen += (await proc.stderr.readline()).decode()
    return seen


def environment(tmp_path: Path, upstream_url: str, **extra: str) -> dict[str, str]:
    return {
        "FEEDGATE_OPENAI_BASE_URL": upstream_url,
        "FEEDGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.db'}",
        # Rows wait up to a second to be written together: the kill lands while they are still queued.
        "FEEDGATE_DATABASE_BATCH_WAIT_MS": "1000",
        **extra,
    }


async def test_without_a_spool_a_crash_is_reported_at_the_next_start(tmp_path: Path, upstream_url: str) -> None:
    env = environment(tmp_path, upstream_url)
    async with serving(env) as (url, first):
        ids = await answered_calls(url)
        await killed(first)
    assert len(stored(tmp_path / "crash.db", ids)) < CALLS  # the loss is real: queued rows died with the process

    async with serving(env) as (url, second):
        log = await stderr_until(second, lambda text: "did not stop cleanly" in text)
        assert f"pid {first.pid}" in log and "database.spool" in log
        ready = await readyz(url)
        assert [stop["pid"] for stop in ready["unclean_stops"]] == [first.pid]
    # Reported once: a clean restart after that says nothing more.
    async with serving(env) as (url, _third):
        assert (await readyz(url))["unclean_stops"] == []


async def test_with_a_spool_a_crash_loses_nothing_and_writes_nothing_twice(tmp_path: Path, upstream_url: str) -> None:
    env = environment(tmp_path, upstream_url, FEEDGATE_DATABASE_SPOOL=str(tmp_path / "spool"))
    async with serving(env) as (url, first):
        ids = await answered_calls(url)
        await killed(first)
    assert len(stored(tmp_path / "crash.db", ids)) < CALLS

    async with serving(env) as (url, second):
        await stderr_until(second, lambda text: "spool:" in text)
        async with asyncio.timeout(15):
            while len(stored(tmp_path / "crash.db", ids)) < CALLS:
                await asyncio.sleep(0.1)
        assert set(stored(tmp_path / "crash.db", ids).values()) == {1}
        # A second crash after everything was written: the spool still holds those records, and the next
        # start must see they are stored instead of logging them again.
        await killed(second)
    async with serving(env) as (url, third):
        log = await stderr_until(third, lambda text: "spool:" in text)
        assert "were already stored, 0 queued now" in log
        ready = await readyz(url)
        assert ready["queue"]["spooled"] is True
    assert set(stored(tmp_path / "crash.db", ids).values()) == {1}
