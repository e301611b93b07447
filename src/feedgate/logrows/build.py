"""Turn a captured ``Exchange`` into a log row. Runs in the writer, after the client has its answer.

This is where the bodies are parsed (once), streams are reassembled, secrets are redacted, Helicone
headers are read for user, session and properties, and the request is priced.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any, NamedTuple

import orjson

from feedgate.logrows.assemble import Assembled, Usage, assemble_json, assemble_sse, request_facts
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.helicone_meta import helicone_meta
from feedgate.logrows.pricing import PriceTable, openai_uncached
from feedgate.logrows.redact import redacted, redacted_query
from feedgate.store.ops import InsertRequest
from feedgate.store.utc import utc_text

# Property set on a row whose usage is known but whose model is not in the price table (cost_usd is null).
COST_FLAG = "feedgate-cost"


def decoded_body(raw: bytes, encoding: str | None) -> bytes:
    """The upstream's body as plain bytes (it was relayed to the client compressed, as it came)."""
    if not raw or not encoding:
        return raw
    encoding = encoding.strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
    except zlib.error:
        return raw
    return raw


def fingerprint(text: str | None) -> str | None:
    if not text:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def response_facts(exchange: Exchange) -> tuple[bytes, Assembled]:
    """The answer's plain bytes and what assembling them found."""
    response_headers = exchange.response_headers or {}
    response_body = decoded_body(b"".join(exchange.response_chunks), response_headers.get("Content-Encoding"))
    assembled = (
        assemble_sse(exchange.provider_kind, exchange.path, response_body)
        if exchange.is_stream
        else assemble_json(exchange.provider_kind, exchange.path, response_body)
        if response_body
        else Assembled()
    )
    return response_body, assembled


def usage_cost(provider_kind: str, model: str | None, usage: Usage, prices: PriceTable) -> float | None:
    uncached = usage.input_tokens
    if provider_kind == "openai":  # OpenAI's prompt_tokens include the cached ones; the table prices them apart
        uncached = openai_uncached(usage.input_tokens, usage.cache_read_tokens)
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    return prices.cost_usd(model, uncached, usage.output_tokens, read, write)


def exchange_cost(exchange: Exchange, prices: PriceTable) -> float | None:
    """What an exchange cost, priced exactly as its log row will be (None: unknown model or usage)."""
    if exchange.status is None or exchange.status >= 400:
        return None
    if exchange.cache_reference_id is not None:
        return 0.0
    _, assembled = response_facts(exchange)
    override = helicone_meta(exchange.request_headers).model_override
    model = override or assembled.model or request_facts(exchange.request_body).model
    return usage_cost(exchange.provider_kind, model, assembled.usage, prices)


class BuiltRow(NamedTuple):
    """A log row and the facts found building it that metrics and traces report (``ops/``)."""

    row: InsertRequest
    request_model: str | None  # the model the request body named
    model: str | None  # the model costs and metrics go by: Helicone-Model-Override, else the row's model
    assembled: Assembled  # the answer: response model and ID, finish reason, usage as reported
    billed: Usage  # usage with input_tokens uncached, so the four token counts never overlap
    cost_usd: float | None
    unpriced: bool  # usage known, model not in the price table


def build_row(exchange: Exchange, prices: PriceTable) -> InsertRequest:
    return build(exchange, prices).row


def build(exchange: Exchange, prices: PriceTable) -> BuiltRow:
    meta = helicone_meta(exchange.request_headers)
    facts = request_facts(exchange.request_body)
    response_headers = exchange.response_headers or {}
    response_body, assembled = response_facts(exchange)
    usage = assembled.usage
    model = assembled.model or facts.model
    priced_model = meta.model_override or model
    properties = {**meta.properties, **exchange.extra_properties}
    cost = None
    unpriced = False
    if exchange.status is not None and exchange.status < 400:
        if exchange.cache_reference_id is not None:
            cost = 0.0  # a cache hit called no provider
        else:
            cost = usage_cost(exchange.provider_kind, priced_model, usage, prices)
            if cost is None and (usage.input_tokens is not None or usage.output_tokens is not None):
                # Usage is known but the model has no price: never a guess, but say why the cost is missing.
                properties[COST_FLAG] = "unknown_model"
                unpriced = True
    signals: tuple[str, ...] = ()
    if exchange.error_type == "client_disconnected" and exchange.is_stream:
        signals = ("abandoned",)
    upstream_id = response_headers.get("x-request-id") or response_headers.get("request-id")
    request_body = None if meta.omit_request else exchange.request_body
    stored_response = None if meta.omit_response else response_body
    values = (
        exchange.request_id,
        utc_text(exchange.started_at),
        exchange.provider,
        exchange.method,
        exchange.path,
        redacted_query(exchange.query) or None,
        exchange.target_url,
        model,
        int(exchange.is_stream),
        exchange.status,
        round(exchange.duration_ms, 3) if exchange.duration_ms is not None else None,
        round(exchange.ttft_ms, 3) if exchange.ttft_ms is not None else None,
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        cost,
        meta.user_id or facts.user,
        meta.session_id,
        meta.session_path,
        meta.session_name,
        meta.prompt_id,
        fingerprint(facts.system_prompt),
        facts.messages_fingerprint,
        orjson.dumps(properties).decode(),
        orjson.dumps(redacted(exchange.request_headers.items())).decode(),
        request_body,
        orjson.dumps(redacted(response_headers.items())).decode() if response_headers else None,
        stored_response,
        _json_text(assembled.message) if exchange.is_stream and not meta.omit_response else None,
        None if meta.omit_response else assembled.text,
        assembled.finish_reason,
        upstream_id,
        exchange.error_type,
        exchange.error_message,
        exchange.cache_reference_id,
        len(exchange.request_body) + len(response_body),
        exchange.trace_id,
        exchange.span_id,
    )
    row = InsertRequest(values, derived_signals=signals, fresh_id=exchange.fresh_id)
    billed = usage
    if exchange.provider_kind == "openai" and usage.cache_read_tokens:
        billed = usage._replace(input_tokens=openai_uncached(usage.input_tokens, usage.cache_read_tokens))
    return BuiltRow(row, facts.model, priced_model, assembled, billed, cost, unpriced)
