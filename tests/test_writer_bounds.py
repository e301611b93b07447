"""The log writer's queue is bounded by bytes as well as by records, so a store that stalls cannot make the
gateway's memory grow with the bodies waiting for it."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from multidict import CIMultiDict

from feedgate.logrows.build import build_row
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.store.sqlite import SqliteStore
from feedgate.store.writer import Writer


def exchange(n: int, body_bytes: int) -> Exchange:
    return Exchange(
        request_id=f"big-{n}",
        started_at=time.time(),
        provider="openai",
        provider_kind="openai",
        method="POST",
        path="/v1/chat/completions",
        query="",
        target_url="http://upstream",
        request_headers=CIMultiDict(),
        request_body=b'{"model": "gpt-4o-mini", "messages": [{"content": "' + b"x" * body_bytes + b'"}]}',
        status=200,
        response_chunks=[b"{}"],
    )


async def test_the_queue_is_bounded_by_bytes_as_well_as_records(tmp_path: Path) -> None:
    store = SqliteStore(f"sqlite:///{tmp_path / 'bounds.db'}")
    await store.open()
    writer: Writer[Exchange] = Writer(
        store, functools.partial(build_row, prices=PriceTable.load()), queue_size=1000, queue_max_bytes=1 << 20
    )
    try:
        # Not started yet, as if the store had stalled: 300 KiB bodies, three fit in one MiB, the rest are refused.
        accepted = [writer.log(exchange(n, 300 * 1024)) for n in range(10)]
        assert accepted == [True] * 3 + [False] * 7
        assert writer.stats.dropped_queue_full == 7 and writer.queued_bytes < 1 << 20
        writer.start()
        await writer.flush()
        assert writer.stats.written == 3 and writer.queued_bytes == 0
        assert writer.log(exchange(10, 300 * 1024))  # room again once written
        await writer.flush()
        assert await store.count_requests() == 4
    finally:
        await writer.stop()
        await store.close()
