"""Running ``feedgate serve`` as a real process in tests: wait until it says it is ready."""

from __future__ import annotations

import asyncio

import aiohttp


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
