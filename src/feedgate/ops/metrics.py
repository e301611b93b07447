"""Prometheus metrics: what exists (``METRICS``), the label values allowed, and the counting of one exchange.

Why it is built this way (the traps other gateways fell into):

- Every label value comes from a bounded set. ``model`` is a model of the price table or of
  ``metrics.models``, anything else ``other``; a flood of made-up model names cannot grow the series.
  Never a user, key, session or request ID.
- An exchange is counted once, after it ends, by the log writer, which builds its row anyway (the model,
  tokens and cost are only known then): nothing per stream event, nothing on the request path. Label
  children are cached, so a count is a dictionary lookup and a few increments.
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

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

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
class _ModelChildren:
    tokens: tuple[Counter, Counter, Counter, Counter]  # input, output, cache_read, cache_write
    cost: Counter
    unpriced: Counter


@dataclass(slots=True)
class _LatencyChildren:
    duration: Histogram
    ttft: Histogram


class Metrics:
    """The app's registry and the metrics feedgate counts itself. Counting never raises past its caller."""

    def __init__(self, providers: Iterable[str], models: ModelLabels) -> None:
        # No *_created series: in the Prometheus text format each is a gauge of its own per label set,
        # doubling the series for a start time Prometheus does not use. (A process-wide switch; feedgate is
        # the process.)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        self.registry = CollectorRegistry(auto_describe=True)
        self.providers = frozenset(providers)
        self.models = models
        r = self.registry

        def spec(name: str) -> MetricSpec:
            return SPECS[name]

        def counter(name: str) -> Counter:
            s = spec(name)
            return Counter(s.name.removesuffix("_total"), s.help, s.labels, registry=r)

        def histogram(name: str, buckets: tuple[float, ...]) -> Histogram:
            s = spec(name)
            return Histogram(s.name, s.help, s.labels, buckets=buckets, registry=r)

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
        self._cache_children = {result: self.cache.labels(result) for result in ("hit", "miss")}
        # Label children by label values, made once: ``labels()`` costs four times an increment.
        self._requests: dict[tuple[str, str, str, bool, str], Counter] = {}
        self._latency: dict[tuple[str, str, str, bool], _LatencyChildren] = {}
        self._overhead: dict[tuple[str, str, bool], Histogram] = {}
        self._by_model: dict[tuple[str, str], _ModelChildren] = {}
        self._feedback: dict[tuple[str, str], Counter] = {}

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
        model_label = self.models(model)
        route = route_of(call.path)
        stream = call.is_stream
        status = status_class(call.status, call.error_type)
        key = (provider, model_label, route, stream, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(
                provider, model_label, route, str(stream).lower(), status
            )
        child.inc()
        latency = self._latency_children(provider, model_label, route, stream)
        if call.duration_ms is not None:
            latency.duration.observe(call.duration_ms / 1000.0)
        if stream and call.ttft_ms is not None:
            latency.ttft.observe(call.ttft_ms / 1000.0)
        if call.upstream_ms is not None and call.duration_ms is not None:
            self._overhead_child(provider, route, stream).observe(max(call.duration_ms - call.upstream_ms, 0.0) / 1000)
        if call.error_type in UPSTREAM_ERROR_KINDS:
            self.upstream_errors.labels(provider, call.error_type).inc()
        elif call.error_type == "rate_limited":
            self.ratelimit.inc()
        if call.cache_result is not None:
            self._cache_children[call.cache_result].inc()
        if call.cache_result == "hit":
            return  # no provider was called: no tokens, no cost
        by_model = self._model_children(provider, model_label)
        if usage is not None:
            for counter, value in zip(
                by_model.tokens,
                (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens),
                strict=True,
            ):
                if value:
                    counter.inc(value)
        if cost_usd:
            by_model.cost.inc(cost_usd)
        if unpriced:
            by_model.unpriced.inc()

    def count_feedback(self, kind: str, value: str) -> None:
        """One committed piece of feedback; ``kind`` and ``value`` must come from the bounded sets."""
        child = self._feedback.get((kind, value))
        if child is None:
            child = self._feedback[kind, value] = self.feedback.labels(kind, value)
        child.inc()

    def observe_batch(self, seconds: float) -> None:
        self.log_batch.observe(seconds)

    def _latency_children(self, provider: str, model: str, route: str, stream: bool) -> _LatencyChildren:
        key = (provider, model, route, stream)
        children = self._latency.get(key)
        if children is None:
            children = self._latency[key] = _LatencyChildren(
                self.duration.labels(provider, model, route, str(stream).lower()),
                self.ttft.labels(provider, model, route),
            )
        return children

    def _overhead_child(self, provider: str, route: str, stream: bool) -> Histogram:
        key = (provider, route, stream)
        child = self._overhead.get(key)
        if child is None:
            child = self._overhead[key] = self.overhead.labels(provider, route, str(stream).lower())
        return child

    def _model_children(self, provider: str, model: str) -> _ModelChildren:
        key = (provider, model)
        children = self._by_model.get(key)
        if children is None:
            tokens = self.tokens
            children = self._by_model[key] = _ModelChildren(
                (
                    tokens.labels(provider, model, "input"),
                    tokens.labels(provider, model, "output"),
                    tokens.labels(provider, model, "cache_read"),
                    tokens.labels(provider, model, "cache_write"),
                ),
                self.cost.labels(provider, model),
                self.unpriced.labels(provider, model),
            )
        return children
