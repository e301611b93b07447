"""A real OTLP/HTTP trace receiver on loopback: decodes each export with opentelemetry-proto, as a collector does."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from fakes import serve_app

SERVER, CLIENT, INTERNAL = 2, 3, 1  # Span.SpanKind in the protocol
STATUS_ERROR = 2


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind is not None else None


def _attributes(pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = _value(pair.value)
    return out


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    links: list[tuple[str, str]]
    status_code: int
    start_ns: int
    end_ns: int
    resource: dict[str, Any]


@dataclass
class Receiver:
    url: str = ""
    spans: list[Span] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.content_types.add(request.content_type)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Span(
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            _attributes(span.attributes),
                            [(event.name, _attributes(event.attributes)) for event in span.events],
                            [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                            span.status.code,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            resource,
                        )
                    )
        async with self._changed:
            self._changed.notify_all()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf"
        )

    async def wait_for(self, found: Callable[[list[Span]], bool], timeout: float = 10.0) -> list[Span]:
        """Wait until the spans received so far satisfy ``found`` (woken by each export, no fixed sleep)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found(self.spans))
        return self.spans

    def named(self, request_id: str) -> list[Span]:
        """The spans that carry this request ID."""
        return [span for span in self.spans if span.attributes.get("feedgate.request_id") == request_id]


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.receive)
    async with serve_app(app) as url:
        receiver.url = f"{url}/v1/traces"
        yield receiver
