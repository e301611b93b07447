"""A full disk under the SQLite store: seen on /readyz, feedback refused fast, and survived as soon as any
space comes back, however little.

The store lives on a small tmpfs mounted for the test, filled up with ballast files: a real full disk, as
SQLite sees it ("database or disk is full"). Mounting needs root (CAP_SYS_ADMIN), which .ci/run has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import openai
import pytest

from conftest import Chat, GatewayFactory, gateway_settings, start_gateway
from feedgate.appkeys import WRITER

CHAT: Chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "echo: full"}]}
BALLAST = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a real full disk (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> list[Path]:
    """Ballast files until the disk has no room left; returns them, so space can be given back."""
    files: list[Path] = []
    chunk = os.urandom(BALLAST)
    with contextlib.suppress(OSError):
        while True:
            path = disk / f"ballast-{len(files)}"
            files.append(path)
            with path.open("wb") as out:
                out.write(chunk)
    return files


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def readyz(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.get(f"{url}/readyz") as answer:
        return answer.status, await answer.json()


async def test_a_full_disk_is_reported_refuses_feedback_fast_and_heals_with_a_little_space(
    small_disk: Path, make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(
        database={"url": f"sqlite:///{small_disk / 'feedgate.db'}", "batch_wait_ms": 0},
        feedback={"store_timeout_s": 0.5},
    )
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as client:
        first = await client.chat.completions.with_raw_response.create(**CHAT)
        await gateway.settled()
        ballast = fill(small_disk)

        # Proxied calls keep working: a full disk costs log rows (queued, not lost), never an answer.
        ids = []
        for _ in range(20):
            raw = await client.chat.completions.with_raw_response.create(**CHAT)
            assert raw.parse().choices[0].message.content == "full"
            ids.append(raw.headers["helicone-id"])

        status, ready = await readyz(http, gateway.url)
        assert status == 503 and "database or disk is full" in str(ready["error"]), ready
        writer = gateway.app[WRITER]
        assert writer.failing and writer.queue.qsize() + len(writer.queued_ids) > 0

        rated = first.headers["helicone-id"]
        async with http.post(f"{gateway.url}/v1/request/{rated}/feedback", json={"rating": False}) as answer:
            assert answer.status == 503
            message = (await answer.json())["error"]
        assert "not stored" in message and "disk is full" in message

        # A little space back is enough for rows to land again: the writer retries in smaller parts until one
        # fits, instead of waiting for room for the whole batch.
        written = writer.stats.written
        ballast.pop().unlink()
        ballast.pop().unlink()
        await until(lambda: writer.stats.written > written)
        for path in ballast:
            path.unlink()
        await gateway.settled(timeout=30)
        status, ready = await readyz(http, gateway.url)
        assert status == 200 and ready["log"]["failing_since"] is None  # type: ignore[index]
        for request_id in ids:
            assert (await gateway.row(request_id))["status"] == 200

    # The refused rating was withdrawn, not stored later behind the client's back.
    async with http.get(f"{gateway.url}/v1/request/{rated}/feedback") as answer:
        assert (await answer.json())["data"]["rating"] is None


async def test_stopping_on_a_full_disk_says_what_was_lost_in_one_line(
    small_disk: Path, tmp_path: Path, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = gateway_settings(tmp_path, upstream_url, database={"url": f"sqlite:///{small_disk / 'feedgate.db'}"})
    async with AsyncExitStack() as stack:
        gateway = await start_gateway(stack, settings)
        async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as client:
            await client.chat.completions.create(**CHAT)
            await gateway.settled()
            fill(small_disk)
            for _ in range(30):
                await client.chat.completions.create(**CHAT)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            await stack.aclose()  # SIGTERM's path: in-flight calls, then the queue, then the store
    said = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(said) == 1, [record.getMessage() for record in said]
    message = said[0].getMessage()
    assert "30 lost" in message and "database or disk is full" in message
    assert not [record for record in caplog.records if record.exc_info or "never retrieved" in record.getMessage()]
