"""OpenTelemetry traces, following the GenAI semantic conventions. Imported only when tracing is on.

``app/`` imports this module only when ``tracing.enabled`` (or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``) says
so, so without the ``otel`` extra, or with tracing off, nothing imports OpenTelemetry and the request path
pays nothing. The tracer provider is the app's own (not the global one), exporting over OTLP/HTTP through
a batch processor whose worker thread does the sending.

What is traced:

- A server span per request (not ``/healthz``, ``/readyz``, ``/metrics``), continuing the caller's
  ``traceparent``; its trace ID goes on the log row (``trace_id``).
- A client span per upstream attempt, every retry and fallback target included, named
  ``{gen_ai.operation.name} {gen_ai.request.model}``. What needs the answer parsed (response model and ID,
  finish reasons, token usage) is set by the log writer, which parses the answer anyway; the span keeps
  the times the proxy recorded. Never prompt or answer text: the log row is where content lives.
- Feedback on a traced call: a ``gen_ai.evaluation.result`` event on a span in the call's trace, child of
  the call's last client span, linked to the feedback request's own span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from feedgate.appkeys import REQUEST_ID, TRACE_ID
from feedgate.ops.metrics import Usage

log = logging.getLogger("feedgate.tracing")
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# gen_ai.operation.name by the kind of call; other paths (GET /v1/models, ...) are plain HTTP client spans.
OPERATIONS = {
    "/chat/completions": "chat",
    "/responses": "chat",
    "/messages": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
}
# gen_ai.provider.name's well-known values by provider kind; an openai-compatible provider reports its name.
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "azure": "azure.ai.openai"}


class Exchange(Protocol):
    """What traces read and write on a ``logrows.exchange.Exchange``."""

    request_id: str
    path: str
    method: str
    is_stream: bool
    status: int | None
    error_type: str | None
    ttft_ms: float | None
    upstream_started: float | None
    trace_id: str | None
    span_id: str | None
    attempt_spans: list[Any] | None


class Answer(Protocol):
    @property
    def model(self) -> str | None: ...
    @property
    def response_id(self) -> str | None: ...
    @property
    def finish_reason(self) -> str | None: ...


class Built(Protocol):
    """What traces read of a built log row (``logrows.build.BuiltRow``)."""

    @property
    def request_model(self) -> str | None: ...
    @property
    def assembled(self) -> Answer: ...
    @property
    def billed(self) -> Usage: ...


class Note(Protocol):
    """A committed piece of feedback (``api.feedback_notes.FeedbackNote``)."""

    @property
    def target_type(self) -> str: ...
    @property
    def target_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def score(self) -> float | None: ...


def operation_of(path: str) -> str | None:
    path = path.rstrip("/")
    for suffix, operation in OPERATIONS.items():
        if path.endswith(suffix):
            return operation
    return None


def _hex_ids(span: Span) -> tuple[str, str] | None:
    context = span.get_span_context()
    if not context.is_valid or not span.is_recording():
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class Attempt:
    """One upstream attempt's client span; ended by the log writer with the times noted here."""

    __slots__ = ("span", "operation", "started", "end_ns", "status", "error_type")

    def __init__(self, span: Span, operation: str | None) -> None:
        self.span = span
        self.operation = operation
        self.started = time.perf_counter()
        self.end_ns: int | None = None
        self.status: int | None = None
        self.error_type: str | None = None

    def inject(self, headers: CIMultiDict[str]) -> None:
        TraceContextTextMapPropagator().inject(headers, context=trace.set_span_in_context(self.span))

    def finish(self, status: int | None, error_type: str | None) -> None:
        if self.end_ns is None:
            self.end_ns, self.status, self.error_type = time.time_ns(), status, error_type

    def end(self, exchange: Exchange, built: Built | None, final: bool) -> None:
        span = self.span
        model = built.request_model if built is not None else None
        if model:
            span.set_attribute("gen_ai.request.model", model)
            if self.operation is not None:
                span.update_name(f"{self.operation} {model}")
        if self.status is not None:
            span.set_attribute("http.response.status_code", self.status)
        if final and built is not None:
            _answer_attributes(span, exchange, built, self.started)
        error = self.error_type or (str(self.status) if self.status is not None and self.status >= 400 else None)
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=self.end_ns)


def _answer_attributes(span: Span, exchange: Exchange, built: Built, attempt_started: float) -> None:
    answer, usage = built.assembled, built.billed
    if answer.model:
        span.set_attribute("gen_ai.response.model", answer.model)
    if answer.response_id:
        span.set_attribute("gen_ai.response.id", answer.response_id)
    if answer.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [answer.finish_reason])
    read, write = usage.cache_read_tokens or 0, usage.cache_write_tokens or 0
    if usage.input_tokens is not None:  # the conventions count cached input in input_tokens
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens + read + write)
    if usage.output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    if read:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", read)
    if write:
        span.set_attribute("gen_ai.usage.cache_creation.input_tokens", write)
    if exchange.is_stream and exchange.ttft_ms is not None and exchange.upstream_started is not None:
        # ttft_ms counts from the call's start; this attempt began that much later.
        offset_s = attempt_started - exchange.upstream_started
        span.set_attribute("gen_ai.response.time_to_first_chunk", max(exchange.ttft_ms / 1000.0 - offset_s, 0.0))


class Tracing:
    """The app's tracer provider, its server-span middleware, and the proxy's ``CallTracer``."""

    def __init__(
        self,
        service_name: str,
        version: str,
        endpoint: str | None,
        sample_ratio: float,
        export_delay_ms: float,
    ) -> None:
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name, "service.version": version}),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
        )
        self.processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=int(export_delay_ms)
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("feedgate", version)
        self.propagator = TraceContextTextMapPropagator()
        self._servers: dict[str, tuple[str, int | None]] = {}

    def shutdown(self) -> None:
        """Send what is left and stop the export thread (blocking: call it off the event loop)."""
        self.provider.shutdown()

    # ---- the server span of every request

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in UNTRACED_PATHS:
            return await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        span = self.tracer.start_span(
            f"{request.method} {route}",
            context=self.propagator.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": route, "url.path": request.path},
        )
        ids = _hex_ids(span)
        if ids is not None:
            request[TRACE_ID] = ids[0]
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_attribute("error.type", str(response.status))
                span.set_status(Status(StatusCode.ERROR))
            return response
        finally:
            request_id = request.get(REQUEST_ID)
            if request_id is not None:
                span.set_attribute("feedgate.request_id", request_id)
            otel_context.detach(token)
            span.end()

    # ---- CallTracer: the proxy's client spans

    def call_started(self, request: web.Request, exchange: Exchange) -> None:
        ids = _hex_ids(trace.get_current_span())
        if ids is not None:
            exchange.trace_id, exchange.span_id = ids

    def start_attempt(self, exchange: Exchange, provider_name: str, provider_kind: str, base_url: str) -> Attempt:
        operation = operation_of(exchange.path)
        address, port = self._server(base_url)
        attributes: dict[str, str | int] = {
            "gen_ai.provider.name": PROVIDER_NAMES.get(provider_kind, provider_name),
            "feedgate.provider": provider_name,
            "feedgate.request_id": exchange.request_id,
            "http.request.method": exchange.method,
            "server.address": address,
        }
        if operation is not None:
            attributes["gen_ai.operation.name"] = operation
        if port is not None:
            attributes["server.port"] = port
        span = self.tracer.start_span(operation or exchange.method, kind=SpanKind.CLIENT, attributes=attributes)
        attempt = Attempt(span, operation)
        if exchange.attempt_spans is None:
            exchange.attempt_spans = []
        exchange.attempt_spans.append(attempt)
        ids = _hex_ids(span)
        if ids is not None:  # feedback on the call goes under its last attempt, the GenAI operation
            exchange.trace_id, exchange.span_id = ids
        return attempt

    def call_ended(self, exchange: Exchange) -> None:
        if exchange.attempt_spans:
            exchange.attempt_spans[-1].finish(exchange.status, exchange.error_type)

    def _server(self, base_url: str) -> tuple[str, int | None]:
        found = self._servers.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            found = (parts.hostname or "", parts.port)
            if len(self._servers) < 1024:
                self._servers[base_url] = found
        return found

    # ---- from the log writer, once the row is built (or dropped: ``built`` None)

    def complete(self, exchange: Exchange, built: Built | None) -> None:
        attempts = exchange.attempt_spans
        if not attempts:
            return
        last = len(attempts) - 1
        for index, attempt in enumerate(attempts):
            attempt.end(exchange, built, index == last)
        exchange.attempt_spans = None

    # ---- feedback as gen_ai.evaluation.result

    def evaluation(self, note: Note, call: tuple[str, str] | None) -> None:
        """Record one piece of feedback; ``call`` is the rated call's (trace ID, span ID) when it was traced."""
        attributes: dict[str, str | float] = {
            "gen_ai.evaluation.name": note.name,
            "gen_ai.evaluation.score.label": note.value,
            "feedgate.feedback.kind": note.kind,
            "feedgate.request_id" if note.target_type == "request" else "feedgate.session_id": note.target_id,
        }
        if note.score is not None:
            attributes["gen_ai.evaluation.score.value"] = note.score
        current = trace.get_current_span()
        if call is None:  # not traced, or not logged yet: the event stays on the feedback request's span
            current.add_event("gen_ai.evaluation.result", attributes)
            return
        parent = SpanContext(
            int(call[0], 16), int(call[1], 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        links = [Link(current.get_span_context())] if current.get_span_context().is_valid else []
        span = self.tracer.start_span(
            f"evaluation {note.name}",
            context=trace.set_span_in_context(NonRecordingSpan(parent)),
            kind=SpanKind.INTERNAL,
            links=links,
            attributes={"feedgate.request_id": note.target_id},
        )
        span.add_event("gen_ai.evaluation.result", attributes)
        span.end()


async def evaluate_notes(
    tracing: Tracing, notes: Sequence[Note], trace_of: Callable[[str], Awaitable[tuple[str, str] | None]]
) -> None:
    """Feedback events for a commit's notes; one trace lookup per rated request."""
    found: dict[str, tuple[str, str] | None] = {}
    for note in notes:
        call = None
        if note.target_type == "request":
            if note.target_id not in found:
                found[note.target_id] = await trace_of(note.target_id)
            call = found[note.target_id]
        tracing.evaluation(note, call)
