"""Running ``feedgate serve`` as a real process in tests: start it, wait until it says it is ready."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO

import aiohttp

from tcpproxy import free_port

Output = int | IO[bytes]


PIPE = asyncio.subprocess.PIPE


async def spawn(
    env: dict[str, str], port: int, *, stdout: Output = PIPE, stderr: Output = PIPE
) -> asyncio.subprocess.Process:
    """``python -m feedgate serve --port PORT`` with ``env`` added to this process's environment."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedgate", "serve", "--port", str(port),
        env={**os.environ, **env}, stdout=stdout, stderr=stderr,
    )  # fmt: skip


@asynccontextmanager
async def serving(
    env: dict[str, str], *, stdout: Output = asyncio.subprocess.DEVNULL
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """A ready gateway process and its URL; stopped with SIGTERM at the end unless the test ended it."""
    port = free_port()
    proc = await spawn(env, port, stdout=stdout)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc)
        yield url, proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


async def wait_ready(url: str, proc: asyncio.subprocess.Process, attempts: int = 400) -> None:
    """Poll ``/readyz`` until it answers 200; fail if the process exits or never gets there."""
    async with aiohttp.ClientSession() as http:
        for _ in range(attempts):
            if proc.returncode is not None:
                raise AssertionError(f"feedgate serve exited early with {proc.returncode}")
            try:
                async with http.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("feedgate serve did not become ready")
