"""Request IDs whose exchange is still being proxied (streaming, or waiting for the upstream).

Feedback that names one of them is linked to a request that is certain to be logged, so it is answered
as stored, not pending.
"""

from __future__ import annotations

import asyncio
from collections import Counter


class Inflight:
    def __init__(self) -> None:
        self._ids: Counter[str] = Counter()
        self._idle_waiters: list[asyncio.Future[None]] = []

    def add(self, request_id: str) -> None:
        self._ids[request_id] += 1

    def discard(self, request_id: str) -> None:
        left = self._ids[request_id] - 1
        if left > 0:
            self._ids[request_id] = left
        else:
            del self._ids[request_id]
            if self._idle_waiters and not self._ids:
                self._wake_idle()

    async def idle(self) -> None:
        """Wait until no exchange is in flight (at once if none is)."""
        if self._ids:
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await waiter

    def _wake_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._ids

    def __len__(self) -> int:
        return sum(self._ids.values())
