"""``GET /metrics``: the registry in Prometheus text format, with what other parts count read at scrape time.

The writer's counters are the same numbers ``/readyz`` shows (``WriterStats``), read when Prometheus asks,
so the two can never disagree and nothing is counted twice. Requests in flight are read the same way.
Pending feedback takes a query over the feedback tables, so it is refreshed at most every
``PENDING_REFRESH_S`` by a scrape and served from memory in between: scraping every few seconds never runs
it more often, and a gateway nobody scrapes never runs it at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from feedgate.appkeys import METRICS_SCRAPE
from feedgate.ops.metrics import SPECS, Metrics

log = logging.getLogger("feedgate.metrics")
PENDING_REFRESH_S = 30.0
PENDING_TIMEOUT_S = 5.0


class WriterStatsView(Protocol):
    @property
    def written(self) -> int: ...
    @property
    def dropped_queue_full(self) -> int: ...
    @property
    def dropped_store_error(self) -> int: ...
    @property
    def dropped_build_error(self) -> int: ...


class QueueView(Protocol):
    @property
    def maxsize(self) -> int: ...
    def qsize(self) -> int: ...


class WriterView(Protocol):
    """What is read of the log writer (``store.writer.Writer``)."""

    @property
    def stats(self) -> WriterStatsView: ...
    @property
    def queue(self) -> QueueView: ...


class PendingFeedback:
    """The pending-feedback count, refreshed by a scrape when older than ``PENDING_REFRESH_S``."""

    def __init__(self, count: Callable[[], Awaitable[int]]) -> None:
        self._count = count
        self.value: int | None = None
        self._refreshed = -PENDING_REFRESH_S
        self._lock = asyncio.Lock()

    async def refresh_if_stale(self) -> None:
        async with self._lock:  # concurrent scrapes run one query, not one each
            if time.monotonic() - self._refreshed < PENDING_REFRESH_S:
                return
            try:
                self.value = await asyncio.wait_for(self._count(), PENDING_TIMEOUT_S)
            except Exception as exc:  # a slow or failing store keeps the last value; the scrape still answers
                log.warning("pending feedback count failed; /metrics keeps the last value: %s", exc)
            self._refreshed = time.monotonic()


class StateCollector:
    """Gauges and counters owned by other parts, read when Prometheus scrapes."""

    def __init__(
        self, writer: Callable[[], WriterView | None], inflight: Callable[[], int], pending: PendingFeedback
    ) -> None:
        self._writer = writer
        self._inflight = inflight
        self.pending = pending
        # The other workers' snapshots (api/health.snapshot) during one scrape, as ``SeriesCollector.others``.
        self.others: list[dict[str, Any]] = []

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, SPECS[name].help, value=value)

        others = self.others

        def theirs(section: str, field: str) -> float:
            return float(sum(other[section][field] for other in others))

        yield gauge("feedgate_inflight_requests", self._inflight() + sum(other["inflight"] for other in others))
        if self.pending.value is not None:  # counted in the shared store: the same for every worker
            yield gauge("feedgate_feedback_pending", self.pending.value)
        writer = self._writer()
        if writer is None:  # before the store is open, or after it closed
            return
        stats = writer.stats
        yield gauge("feedgate_log_queue_depth", writer.queue.qsize() + theirs("queue", "queued"))
        yield gauge("feedgate_log_queue_capacity", writer.queue.maxsize + theirs("queue", "capacity"))
        name = "feedgate_log_rows_written_total"
        written = stats.written + theirs("log", "written")
        yield CounterMetricFamily(name.removesuffix("_total"), SPECS[name].help, value=written)
        name = "feedgate_log_rows_dropped_total"
        dropped = CounterMetricFamily(name.removesuffix("_total"), SPECS[name].help, labels=["reason"])
        dropped.add_metric(["queue_full"], stats.dropped_queue_full + theirs("log", "dropped_queue_full"))
        dropped.add_metric(["store_error"], stats.dropped_store_error + theirs("log", "dropped_store_error"))
        dropped.add_metric(["build_error"], stats.dropped_build_error + theirs("log", "dropped_build_error"))
        yield dropped


def register_state(registry: CollectorRegistry, state: StateCollector, version: str) -> None:
    """The scrape-time collectors: feedgate's state, build info, and the process (CPU, memory, files, GC)."""
    registry.register(state)
    info = GaugeMetricFamily("feedgate_build_info", SPECS["feedgate_build_info"].help, labels=["version"])
    info.add_metric([version], 1)
    registry.register(_Fixed([info]))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


async def metrics_handler(request: web.Request) -> web.Response:
    scrape = request.app[METRICS_SCRAPE]
    await scrape.state.pending.refresh_if_stale()
    others = await scrape.other_workers() if scrape.other_workers is not None else []
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    # Set for this encoding only: it is synchronous, so no other scrape on this loop sees them.
    scrape.state.others = others
    scrape.metrics.series.others = [other["series"] for other in others if "series" in other]
    try:
        body = encode(scrape.metrics.registry)
    finally:
        scrape.state.others = []
        scrape.metrics.series.others = []
    return web.Response(body=body, headers={"Content-Type": content_type})


@dataclass(frozen=True, slots=True)
class Scrape:
    """What ``/metrics`` serves: the app's metrics (and registry), and the state read at scrape time."""

    metrics: Metrics
    state: StateCollector
    # With ``--workers N``: the other workers' latest snapshots, so one scrape counts the whole instance.
    # The process's own figures (CPU, memory, open files, GC) stay this worker's.
    other_workers: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
