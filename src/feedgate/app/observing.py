"""Metrics and traces wired in from the edges: they observe what the request and feedback paths already do.

The writer's row builder is wrapped here so each proxied exchange is counted (and its client spans ended)
once, after it ended, from the row built anyway; feedback is counted from the notes of each commit. With
``--workers N``, a worker sends its figures to its supervisor each second and ``/metrics`` adds the others'.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from feedgate.api import health
from feedgate.api.feedback_notes import FeedbackNote
from feedgate.appkeys import (
    FEEDBACK_OBSERVER,
    INFLIGHT,
    METRICS_SCRAPE,
    PRICES,
    PROVIDERS,
    STORE,
    SUPERVISOR,
    WRITER,
)
from feedgate.config import Settings
from feedgate.logrows.build import build
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable
from feedgate.ops.metrics import Metrics, ModelLabels
from feedgate.ops.scrape import PendingFeedback, Scrape, StateCollector, metrics_handler, register_state
from feedgate.store.bodies import BodyPacker
from feedgate.store.ops import InsertRequest
from feedgate.store.reads.feedback import pending_count, trace_of
from feedgate.workers import WorkerOf

if TYPE_CHECKING:
    from feedgate.ops.tracing import Tracing

log = logging.getLogger("feedgate")
METRICS_ROUTE = "/metrics"


def row_builder(
    prices: PriceTable,
    max_decoded_bytes: int,
    metrics: Metrics | None,
    tracing: Tracing | None,
    packer: BodyPacker | None = None,
) -> Callable[[Exchange], InsertRequest]:
    """The writer's ``build_row``: build the row, then count the proxied exchange and end its spans.

    ``packer`` is the writer's own (one compressor, reused for every row): it compresses or drops bodies as the
    ``log`` settings say."""

    def build_and_observe(exchange: Exchange) -> InsertRequest:
        built = build(exchange, prices, max_decoded_bytes, packer)
        if exchange.proxied:
            exchange.model = built.model
            try:
                if metrics is not None:
                    metrics.count_call(exchange, built.model, built.billed, built.cost_usd, built.unpriced)
                if tracing is not None:
                    tracing.complete(exchange, built)
            except Exception:  # observing must never cost the row
                log.exception("metrics or traces of request %s failed", exchange.request_id)
        return built.row

    return build_and_observe


def drop_observer(metrics: Metrics | None, tracing: Tracing | None) -> Callable[[Exchange], None] | None:
    """A call whose log record the full queue dropped is still counted (its body never parsed: model other)."""
    if metrics is None and tracing is None:
        return None

    def dropped(exchange: Exchange) -> None:
        if not exchange.proxied:
            return
        try:
            if metrics is not None:
                metrics.count_call(exchange, None)
            if tracing is not None:
                tracing.complete(exchange, None)
        except Exception:
            log.exception("metrics or traces of dropped request %s failed", exchange.request_id)

    return dropped


def observe_feedback(app: web.Application, metrics: Metrics | None, tracing: Tracing | None) -> None:
    if metrics is None and tracing is None:
        return

    async def observe(request: web.Request, notes: Sequence[FeedbackNote]) -> None:
        try:
            if metrics is not None:
                for note in notes:
                    metrics.count_feedback(note.kind, note.value)
            if tracing is not None:
                from feedgate.ops.tracing import evaluate_notes

                await evaluate_notes(tracing, notes, functools.partial(trace_of, app[STORE]))
        except Exception:  # the feedback is committed; observing it must not turn that into an error
            log.exception("metrics or traces of feedback failed")

    app[FEEDBACK_OBSERVER] = observe


def metrics_for(app: web.Application, settings: Settings, worker: WorkerOf | None) -> Metrics | None:
    if not settings.metrics.enabled:
        return None
    prices = app[PRICES]

    def price_table_name(model: str) -> str | None:
        found = prices.lookup(model)
        return found[0] if found is not None else None

    version = feedgate_version()
    metrics = Metrics(app[PROVIDERS].by_name, ModelLabels(price_table_name, settings.metrics.models))
    state = StateCollector(
        lambda: app.get(WRITER), lambda: len(app[INFLIGHT]), PendingFeedback(lambda: pending_count(app[STORE]))
    )
    register_state(metrics.registry, state, version)
    app[METRICS_SCRAPE] = Scrape(metrics, state, functools.partial(_other_workers, app) if worker else None)
    app.router.add_get(METRICS_ROUTE, metrics_handler)
    return metrics


def worker_snapshot(app: web.Application) -> dict[str, Any]:
    """What a worker of ``--workers N`` tells its supervisor each second: its /readyz figures and metric series."""
    snapshot = health.snapshot(app)
    scrape = app.get(METRICS_SCRAPE)
    if scrape is not None:
        snapshot["series"] = scrape.metrics.series.export()
    return snapshot


async def _other_workers(app: web.Application) -> list[dict[str, Any]]:
    """The other workers' latest snapshots, for /metrics; none when the supervisor does not answer."""
    try:
        instance = await app[SUPERVISOR].instance()
    except Exception as exc:
        log.warning("/metrics counts this worker only: the supervisor did not answer (%s)", exc)
        return []
    me = os.getpid()
    return [each["snapshot"] for each in instance["workers"] if each["snapshot"] and each["pid"] != me]


def tracing_wanted(settings: Settings, environ: os._Environ[str] | dict[str, str]) -> bool:
    """``tracing.enabled``, or the standard OTLP endpoint variables (unless ``OTEL_SDK_DISABLED``)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return settings.tracing.enabled or any(
        environ.get(name) for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_for(settings: Settings) -> Tracing | None:
    """The tracer, imported only now: without tracing, nothing imports OpenTelemetry."""
    if not tracing_wanted(settings, os.environ):
        return None
    try:
        from feedgate.ops.tracing import Tracing
    except ImportError as exc:
        if settings.tracing.enabled:  # the settings checked it is installed; an install this broken must say so
            raise
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed; not tracing (%s)", exc)
        return None
    config = settings.tracing
    return Tracing(
        config.service_name, feedgate_version(), config.endpoint, config.sample_ratio, config.export_delay_ms
    )


def feedgate_version() -> str:
    try:
        return importlib.metadata.version("feedgate")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
