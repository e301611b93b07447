"""Prometheus metrics: what exists (``METRICS``), the label values allowed, and the counting of one exchange.

Why it is built this way (the traps other gateways fell into):

- Every label value comes from a bounded set. ``model`` is a model of the price table or of
  ``metrics.models``, anything else ``other``; a flood of made-up model names cannot grow the series.
  Never a user, key, session or request ID.
- An exchange is counted once, after it ends, by the log writer, which builds its row anyway (the model,
  tokens and cost are only known then): nothing per stream event, nothing on the request path. The label
  values of each kind of call are built once, and the counts are plain numbers (``ops/series.py``), so a
  count is a few dictionary updates.
- One registry per app (not prometheus_client's global one), so several apps in one process stay apart.
- What other parts already count (the writer's counters, requests in flight) is read at scrape time by
  ``ops/scrape.py``, never counted twice.

``python -m feedgate.ops.reference`` turns ``METRICS`` into the reference tables of the README and
``docs/observability.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry

from feedgate.ops.series import CounterSeries, HistogramSeries, Labels, SeriesCollector

ROUTES = ("chat", "responses", "messages", "embeddings", "other")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
TOKEN_DIRECTIONS = ("input", "output", "cache_read", "cache_write")
UPSTREAM_ERROR_KINDS = ("upstream_unreachable", "upstream_timeout", "upstream_disconnected")
OTHER = "other"

# LLM calls take from a fraction of a second to several minutes; the buckets cover that range evenly on a
# log scale so p50 and p99 both land between two close bounds.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0, 120.0)
# feedgate's own time per call is counted in microseconds to milliseconds.
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: str  # counter, gauge or histogram, as Prometheus types it
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "feedgate_requests_total",
        "counter",
        ("provider", "model", "route", "stream", "status_class"),
        "Proxied calls, counted once each when it ends (cache hits and rate-limited calls too).",
    ),
    MetricSpec(
        "feedgate_request_duration_seconds",
        "histogram",
        ("provider", "model", "route", "stream"),
        "Whole duration of a proxied call, from its body read to its last byte sent.",
    ),
    MetricSpec(
        "feedgate_time_to_first_token_seconds",
        "histogram",
        ("provider", "model", "route"),
        "Streamed calls: time from the call's start to the first chunk of the answer.",
    ),
    MetricSpec(
        "feedgate_overhead_seconds",
        "histogram",
        ("provider", "route", "stream"),
        "Time spent in feedgate, not waiting on the provider: the call's duration minus the span from the first "
        "byte sent upstream to the last byte of the answer received. Calls that got an answer from a provider.",
    ),
    MetricSpec("feedgate_inflight_requests", "gauge", (), "Proxied calls in progress (read at scrape time)."),
    MetricSpec(
        "feedgate_tokens_total",
        "counter",
        ("provider", "model", "direction"),
        "Tokens providers reported: input (uncached), output, cache_read, cache_write. Cache hits add none.",
    ),
    MetricSpec(
        "feedgate_cost_usd_total",
        "counter",
        ("provider", "model"),
        "Cost in USD from the price table, the same figure as the log rows' cost_usd.",
    ),
    MetricSpec(
        "feedgate_unpriced_requests_total",
        "counter",
        ("provider", "model"),
        "Successful calls with known usage but a model missing from the price table (their cost is unknown).",
    ),
    MetricSpec(
        "feedgate_upstream_errors_total",
        "counter",
        ("provider", "kind"),
        "Calls whose provider failed, by the log's failure kind: upstream_unreachable, upstream_timeout, "
        "upstream_disconnected.",
    ),
    MetricSpec(
        "feedgate_cache_requests_total",
        "counter",
        ("result",),
        "Calls that read the response cache (Helicone-Cache-Enabled), by result: hit or miss.",
    ),
    MetricSpec(
        "feedgate_ratelimit_rejections_total",
        "counter",
        (),
        "Calls refused with 429 by a Helicone-RateLimit-Policy.",
    ),
    MetricSpec(
        "feedgate_feedback_total",
        "counter",
        ("kind", "value"),
        "Feedback committed: rating and session_rating (up, down, cleared), signal (its name if known, else "
        "other), score (true, false or number).",
    ),
    MetricSpec(
        "feedgate_feedback_pending",
        "gauge",
        (),
        "Request IDs with feedback waiting for their request to be logged (refreshed at most every 30 s).",
    ),
    MetricSpec("feedgate_log_queue_depth", "gauge", (), "Log records waiting in the writer's queue."),
    MetricSpec("feedgate_log_queue_capacity", "gauge", (), "Size of the writer's queue (database.queue_size)."),
    MetricSpec(
        "feedgate_log_rows_written_total", "counter", (), "Log rows committed to the store (as /readyz's written)."
    ),
    MetricSpec(
        "feedgate_log_rows_dropped_total",
        "counter",
        ("reason",),
        "Log rows lost, as /readyz counts them: queue_full, store_error, build_error.",
    ),
    MetricSpec(
        "feedgate_log_batch_seconds",
        "histogram",
        (),
        "Time the writer took to build and commit one batch.",
    ),
    MetricSpec("feedgate_build_info", "gauge", ("version",), "Always 1; the running feedgate's version."),
)
SPECS = {spec.name: spec for spec in METRICS}


class Usage(Protocol):
    """Token counts of one call, as the log row's builder found them."""

    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def cache_read_tokens(self) -> int | None: ...
    @property
    def cache_write_tokens(self) -> int | None: ...


class Call(Protocol):
    """What metrics read of a finished exchange (``logrows.exchange.Exchange`` has all of it)."""

    @property
    def provider(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def is_stream(self) -> bool: ...
    @property
    def status(self) -> int | None: ...
    @property
    def error_type(self) -> str | None: ...
    @property
    def duration_ms(self) -> float | None: ...
    @property
    def ttft_ms(self) -> float | None: ...
    @property
    def upstream_ms(self) -> float | None: ...
    @property
    def cache_result(self) -> str | None: ...


def route_of(path: str) -> str:
    """The bounded ``route`` label of a proxied path."""
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/messages"):
        return "messages"
    if path.endswith("/embeddings"):
        return "embeddings"
    return OTHER


def status_class(status: int | None, error_type: str | None) -> str:
    """The status class the client saw; without a status line, the one feedgate answered with."""
    if status is None:
        # No answer from the provider: 502 or 504 from feedgate; a client gone early is nginx's 499.
        return "4xx" if error_type == "client_disconnected" else "5xx"
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "5xx"


class ModelLabels:
    """A model name as a label value: a price-table name, a ``metrics.models`` name, or ``other``.

    ``resolve`` gives the price table's name for a model (dated snapshots and provider prefixes map to their
    table entry), so the label set is bounded by the table, whatever names clients send.
    """

    def __init__(self, resolve: Callable[[str], str | None], extra: Iterable[str] = ()) -> None:
        self._resolve = resolve
        self._extra = {name.strip().lower(): name.strip() for name in extra if name.strip()}
        self._seen: dict[str | None, str] = {}

    def __call__(self, model: str | None) -> str:
        label = self._seen.get(model)
        if label is None:
            label = self._label(model)
            if len(self._seen) < 4096:  # a flood of random names must not grow this either
                self._seen[model] = label
        return label

    def _label(self, model: str | None) -> str:
        if not model:
            return OTHER
        extra = self._extra.get(model.strip().lower())
        if extra is not None:
            return extra
        return self._resolve(model) or OTHER


@dataclass(slots=True)
class _CallLabels:
    """The label values of one kind of call, built once: a count is then a few dictionary updates."""

    requests: Labels
    duration: Labels
    ttft: Labels
    overhead: Labels
    tokens: tuple[Labels, Labels, Labels, Labels]  # input, output, cache_read, cache_write
    by_model: Labels


class Metrics:
    """The app's registry and the metrics feedgate counts itself. Counting never raises past its caller."""

    def __init__(self, providers: Iterable[str], models: ModelLabels) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.providers = frozenset(providers)
        self.models = models

        def counter(name: str) -> CounterSeries:
            s = SPECS[name]
            return CounterSeries(s.name.removesuffix("_total"), s.help, s.labels)

        def histogram(name: str, buckets: tuple[float, ...]) -> HistogramSeries:
            s = SPECS[name]
            return HistogramSeries(s.name, s.help, s.labels, buckets)

        self.requests = counter("feedgate_requests_total")
        self.duration = histogram("feedgate_request_duration_seconds", DURATION_BUCKETS)
        self.ttft = histogram("feedgate_time_to_first_token_seconds", TTFT_BUCKETS)
        self.overhead = histogram("feedgate_overhead_seconds", OVERHEAD_BUCKETS)
        self.tokens = counter("feedgate_tokens_total")
        self.cost = counter("feedgate_cost_usd_total")
        self.unpriced = counter("feedgate_unpriced_requests_total")
        self.upstream_errors = counter("feedgate_upstream_errors_total")
        self.cache = counter("feedgate_cache_requests_total")
        self.ratelimit = counter("feedgate_ratelimit_rejections_total")
        self.feedback = counter("feedgate_feedback_total")
        self.log_batch = histogram("feedgate_log_batch_seconds", BATCH_BUCKETS)
        # A counter without labels is shown at 0 before anything happened, as prometheus_client shows it.
        self.ratelimit.add((), 0.0)
        for result in ("hit", "miss"):
            self.cache.add((result,), 0.0)
        self.series = SeriesCollector(
            [
                self.requests,
                self.duration,
                self.ttft,
                self.overhead,
                self.tokens,
                self.cost,
                self.unpriced,
                self.upstream_errors,
                self.cache,
                self.ratelimit,
                self.feedback,
                self.log_batch,
            ]
        )
        self.registry.register(self.series)
        self._labels: dict[tuple[str, str, str, bool, str], _CallLabels] = {}

    def count_call(
        self,
        call: Call,
        model: str | None,
        usage: Usage | None = None,
        cost_usd: float | None = None,
        unpriced: bool = False,
    ) -> None:
        """Count one finished exchange. ``usage`` and ``cost_usd`` as its log row has them (None when unknown).

        ``usage.input_tokens`` must be the uncached input, so the four directions never count a token twice.
        """
        provider = call.provider if call.provider in self.providers else OTHER
        stream = call.is_stream
        key = (provider, self.models(model), route_of(call.path), stream, status_class(call.status, call.error_type))
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = _call_labels(*key)
        self.requests.add(labels.requests)
        duration_ms = call.duration_ms
        if duration_ms is not None:
            self.duration.observe(labels.duration, duration_ms / 1000.0)
            if call.upstream_ms is not None:
                self.overhead.observe(labels.overhead, max(duration_ms - call.upstream_ms, 0.0) / 1000.0)
        if stream and call.ttft_ms is not None:
            self.ttft.observe(labels.ttft, call.ttft_ms / 1000.0)
        error_type = call.error_type
        if error_type is not None:
            if error_type in UPSTREAM_ERROR_KINDS:
                self.upstream_errors.add((provider, error_type))
            elif error_type == "rate_limited":
                self.ratelimit.add(())
        cache_result = call.cache_result
        if cache_result is not None:
            self.cache.add((cache_result,))
            if cache_result == "hit":
                return  # no provider was called: no tokens, no cost
        if usage is not None:
            for token_labels, value in zip(
                labels.tokens,
                (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens),
                strict=True,
            ):
                if value:
                    self.tokens.add(token_labels, value)
        if cost_usd:
            self.cost.add(labels.by_model, cost_usd)
        if unpriced:
            self.unpriced.add(labels.by_model)

    def count_feedback(self, kind: str, value: str) -> None:
        """One committed piece of feedback; ``kind`` and ``value`` must come from the bounded sets."""
        self.feedback.add((kind, value))

    def observe_batch(self, seconds: float) -> None:
        self.log_batch.observe((), seconds)


def _call_labels(provider: str, model: str, route: str, stream: bool, status: str) -> _CallLabels:
    stream_text = "true" if stream else "false"
    return _CallLabels(
        requests=(provider, model, route, stream_text, status),
        duration=(provider, model, route, stream_text),
        ttft=(provider, model, route),
        overhead=(provider, route, stream_text),
        tokens=tuple((provider, model, direction) for direction in TOKEN_DIRECTIONS),  # type: ignore[arg-type]
        by_model=(provider, model),
    )
