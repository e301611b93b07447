"""Feedback for request IDs that never showed up: reported, then dropped after ``feedback.pending_ttl_s``.

Feedback may arrive before its request is logged (the writer's queue, another instance, an app that rates
before it sends); it waits as pending and links by ID when the request lands. Feedback that nothing
claims within the TTL is almost always a wrong ID in the app, so it is logged by ID before it goes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from feedgate.store.ops import DropPending
from feedgate.store.protocol import Store
from feedgate.store.reads.feedback import pending_feedback
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer

log = logging.getLogger("feedgate.pending")


async def expired(store: Store, ttl_s: float) -> list[dict[str, Any]]:
    return await pending_feedback(store, utc_text(time.time() - ttl_s))


async def sweep_once(store: Store, writer: Writer[Any], ttl_s: float) -> int:
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
