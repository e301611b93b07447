"""Feedback for request IDs that never showed up: reported, then dropped after ``feedback.pending_ttl_s``.

Feedback may arrive before its request is logged (the writer's queue, another instance, an app that rates
before it sends); it waits as pending and links by ID when the request lands. Feedback that nothing
claims within the TTL is almost always a wrong ID in the app, so it is logged by ID before it goes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from feedgate.keys import SETTINGS, STORE, WRITER
from feedgate.store.base import DropPending, Store, utc_text
from feedgate.store.feedback_reads import pending_feedback
from feedgate.store.writer import Writer

log = logging.getLogger("feedgate.pending")


async def expired(store: Store, ttl_s: float) -> list[dict[str, Any]]:
    return await pending_feedback(store, utc_text(time.time() - ttl_s))


async def sweep_once(store: Store, writer: Writer, ttl_s: float) -> int:
    """Report and drop pending feedback older than the TTL; returns how many request IDs were dropped."""
    rows = await expired(store, ttl_s)
    if not rows:
        return 0
    for row in rows:
        log.warning(
            "dropping unclaimed feedback for request %s: %d notes since %s, no such request was logged in %.0fs",
            row["request_id"],
            row["events"],
            row["first_utc"],
            ttl_s,
        )
    await writer.submit(DropPending([row["request_id"] for row in rows]))
    return len(rows)


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    ttl_s = app[SETTINGS].feedback.pending_ttl_s
    interval = min(max(ttl_s / 10, 1.0), 600.0)

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep_once(app[STORE], app[WRITER], ttl_s)
            except Exception:
                log.exception("pending-feedback sweep failed; will retry")

    task = asyncio.create_task(loop(), name="feedgate-pending-sweeper")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
