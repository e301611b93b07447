"""Turn a captured ``Exchange`` into a log row. Runs in the writer, after the client has its answer.

This is where the bodies are parsed (once), streams are reassembled, secrets are redacted, Helicone
headers are read for user, session and properties, and the request is priced.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import orjson

from feedgate.pricing import PriceTable, openai_uncached
from feedgate.proxy.assemble import Assembled, assemble_json, assemble_sse, request_facts
from feedgate.proxy.exchange import Exchange
from feedgate.proxy.headers import helicone_meta, redacted
from feedgate.store.base import InsertRequest, utc_text


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


def derive_row(exchange: Exchange, prices: PriceTable) -> InsertRequest:
    meta = helicone_meta(exchange.request_headers)
    facts = request_facts(exchange.request_body)
    response_headers = exchange.response_headers or {}
    response_body = decoded_body(b"".join(exchange.response_chunks), response_headers.get("Content-Encoding"))
    assembled = (
        assemble_sse(exchange.provider_kind, exchange.path, response_body)
        if exchange.is_stream
        else assemble_json(exchange.provider_kind, exchange.path, response_body)
        if response_body
        else Assembled()
    )
    usage = assembled.usage
    model = assembled.model or facts.model
    priced_model = meta.model_override or model
    uncached_input = (
        openai_uncached(usage.input_tokens, usage.cache_read_tokens)
        if exchange.provider_kind == "openai"
        else usage.input_tokens
    )
    cost = (
        prices.cost_usd(
            priced_model, uncached_input, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens
        )
        if exchange.status is not None and exchange.status < 400
        else None
    )
    properties = {**meta.properties, **exchange.extra_properties}
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
        exchange.query or None,
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
    )
    return InsertRequest(values, derived_signals=signals)
