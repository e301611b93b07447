"""Which runs stopped uncleanly: a run of an earlier process with this PID is found, a live one is not."""

from __future__ import annotations

import asyncio

from feedgate.store.ops import RecordRun
from feedgate.store.protocol import Store
from feedgate.store.runs import Runs
from feedgate.store.utc import utc_text


async def test_a_second_gateway_in_this_process_does_not_report_the_first(store: Store) -> None:
    first = Runs()
    await store.apply([first.record()])
    await asyncio.sleep(0.01)
    second = Runs()  # same host and PID, started after the first
    await store.apply([second.record(), first.record()])  # the first is still beating
    assert await second.find_unclean(store, spooled=False) is None
    assert second.unclean == []


async def test_an_earlier_process_with_this_pid_that_never_stopped_is_reported(store: Store) -> None:
    earlier = Runs(started_utc="2026-01-01T00:00:00.000000Z")
    await store.apply([RecordRun(earlier.run_id, earlier.host, earlier.pid, earlier.started_utc, utc_text())])
    await asyncio.sleep(0.01)
    now = Runs()  # a restarted container: the same PID again
    report = await now.find_unclean(store, spooled=False)
    assert report is not None and report.run_ids == [earlier.run_id]
    assert [run["run_id"] for run in now.unclean] == [earlier.run_id]
    await store.apply([report])
    assert await Runs().find_unclean(store, spooled=False) is None  # reported once
