"""Turn a captured ``Exchange`` into a log row. Runs in the writer, after the client has its answer.

This is where the bodies are parsed (once), streams are reassembled, secrets are redacted, Helicone
headers are read for user, session and properties, and the request is priced.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import zlib
from collections.abc import Mapping
from itertools import chain
from typing import Any, NamedTuple

import orjson
from multidict import CIMultiDict

from feedgate.logrows.assemble import (
    Assembled,
    Usage,
    api_of,
    assemble_json,
    assemble_sse,
    parsed_request_facts,
    request_facts,
)
from feedgate.logrows.assemble_common import loads
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.helicone_meta import helicone_meta
from feedgate.logrows.pricing import PriceTable, openai_uncached
from feedgate.logrows.redact import redacted, redacted_body, redacted_properties, redacted_query
from feedgate.store.bodies import BodyPacker
from feedgate.store.ops import InsertRequest
from feedgate.store.utc import utc_text

# Property set on a row whose usage is known but whose model is not in the price table (cost_usd is null).
COST_FLAG = "feedgate-cost"
# Property set on a row whose answer came in an encoding feedgate cannot decode (its value names the encoding):
# the body is not stored as text, since it would be garbled bytes; the writer counts these rows.
UNDECODABLE_FLAG = "feedgate-undecodable"
# Property set on a row whose compressed answer decoded to more than the cap: the logged body is cut there.
TRUNCATED_FLAG = "feedgate-truncated"
# What a log decodes a compressed answer to at most, unless the settings say otherwise (a decompression bomb
# of a few kilobytes must not take the writer's memory).
DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024
_ZLIB_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class Decoded(NamedTuple):
    """An answer's body decoded for the log, and what stopped it: None, "undecodable" or "truncated"."""

    body: bytes
    problem: str | None = None
    encoding: str | None = None


def _inflate(raw: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    """``raw`` inflated to at most ``limit`` bytes; True when there was more."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(raw, limit)
    return out, bool(inflater.unconsumed_tail)


def decoded_body(raw: bytes, encoding: str | None, limit: int = DEFAULT_MAX_DECODED_BYTES) -> Decoded:
    """The upstream's body as plain bytes (it was relayed to the client compressed, as it came).

    gzip and deflate are decoded (bounded by ``limit``); any other encoding, or a body that does not
    decode, is reported as undecodable rather than passed on as if it were text.
    """
    if not raw or not encoding:
        return Decoded(raw)
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    body = raw
    for coding in reversed(codings):  # listed in the order they were applied
        wbits = _ZLIB_WBITS.get(coding)
        if wbits is None:
            return Decoded(b"", "undecodable", coding)
        try:
            body, cut = _inflate(body, wbits, limit)
        except zlib.error:
            if coding != "deflate":
                return Decoded(b"", "undecodable", coding)
            try:  # raw deflate, without the zlib header some servers leave out
                body, cut = _inflate(body, -zlib.MAX_WBITS, limit)
            except zlib.error:
                return Decoded(b"", "undecodable", coding)
        if cut:
            return Decoded(body, "truncated", coding)
    return Decoded(body)


def fingerprint(text: str | None) -> str | None:
    if not text:
        return None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def response_facts(exchange: Exchange, limit: int = DEFAULT_MAX_DECODED_BYTES) -> tuple[Decoded, Assembled]:
    """The answer's plain bytes and what assembling them found."""
    response_headers = exchange.response_headers or {}
    decoded = decoded_body(b"".join(exchange.response_chunks), response_headers.get("Content-Encoding"), limit)
    response_body = decoded.body
    assembled = (
        assemble_sse(exchange.provider_kind, exchange.path, response_body)
        if exchange.is_stream
        else assemble_json(exchange.provider_kind, exchange.path, response_body)
        if response_body
        else Assembled()
    )
    return decoded, assembled


# The first event of a Responses stream that carries output (text, a refusal, function-call arguments, a
# reasoning summary): the time to first token is when the chunk holding it arrived.
_FIRST_OUTPUT = re.compile(rb'"type":\s*"response\.[a-z_.]+\.delta"')


def first_output_ms(exchange: Exchange) -> float | None:
    """Milliseconds from the request to the chunk that held the stream's first output delta (Responses API)."""
    times, chunks = exchange.chunk_times, exchange.response_chunks
    if exchange.perf_started is None or not times or len(times) != len(chunks):
        return None
    ends: list[int] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        ends.append(total)
    found = _FIRST_OUTPUT.search(b"".join(chunks))
    if found is None:
        return None
    index = bisect.bisect_right(ends, found.start())
    return (times[index] - exchange.perf_started) * 1000.0


def usage_cost(provider_kind: str, model: str | None, usage: Usage, prices: PriceTable, api: str = "") -> float | None:
    uncached = usage.input_tokens
    # OpenAI's prompt_tokens include the cached ones; the table prices them apart. Anthropic's exclude them, also
    # when an Anthropic stream was reported to a manual log route of the OpenAI kind.
    if provider_kind == "openai" and api != "messages":
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
    model = override or assembled.model or request_facts(exchange.request_body, exchange.path).model
    api = api_of(exchange.provider_kind, exchange.path, assembled.message)
    return usage_cost(exchange.provider_kind, model, assembled.usage, prices, api)


def _reads_back(exchange: Exchange, api: str, assembled: Assembled) -> bool:
    """A ``GET /v1/responses/{id}`` of a response made in the foreground, whose usage its create already reported.

    A background response's create answers ``queued`` with no usage, so its retrieval is where the cost shows.
    """
    return exchange.method == "GET" and api == "responses" and (assembled.message or {}).get("background") is not True


class BuiltRow(NamedTuple):
    """A log row and the facts found building it that metrics and traces report (``ops/``)."""

    row: InsertRequest
    request_model: str | None  # the model the request body named
    model: str | None  # the model costs and metrics go by: Helicone-Model-Override, else the row's model
    assembled: Assembled  # the answer: response model and ID, finish reason, usage as reported
    billed: Usage  # usage with input_tokens uncached, so the four token counts never overlap
    cost_usd: float | None
    unpriced: bool  # usage known, model not in the price table


def build_row(
    exchange: Exchange,
    prices: PriceTable,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    packer: BodyPacker | None = None,
) -> InsertRequest:
    return build(exchange, prices, max_decoded_bytes, packer).row


def build(
    exchange: Exchange,
    prices: PriceTable,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    packer: BodyPacker | None = None,
) -> BuiltRow:
    """The row of ``exchange``; ``packer`` (the writer's, from the ``log`` settings) compresses or drops bodies
    as they are stored (without one, bodies are kept as sent)."""
    request_headers = _utf8_headers(exchange.request_headers)
    meta = helicone_meta(request_headers)
    request_data = loads(exchange.request_body)  # once, for its facts and for redaction
    facts = parsed_request_facts(request_data, exchange.path)
    response_headers = _utf8_headers(exchange.response_headers or {})
    decoded, assembled = response_facts(exchange, max_decoded_bytes)
    response_body = decoded.body
    usage = assembled.usage
    model = assembled.model or facts.model
    priced_model = meta.model_override or model
    properties = redacted_properties({**meta.properties, **exchange.extra_properties})
    if decoded.problem == "undecodable":
        properties[UNDECODABLE_FLAG] = decoded.encoding or "unknown"
    elif decoded.problem == "truncated":
        properties[TRUNCATED_FLAG] = f"decoded answer cut at {max_decoded_bytes} bytes"
    api = api_of(exchange.provider_kind, exchange.path, assembled.message)
    cost = None
    unpriced = False
    if exchange.status is not None and exchange.status < 400:
        if exchange.cache_reference_id is not None:
            cost = 0.0  # a cache hit called no provider
        elif _reads_back(exchange, api, assembled):
            cost = 0.0  # reading a stored response back bills nothing: its create was priced
        else:
            cost = usage_cost(exchange.provider_kind, priced_model, usage, prices, api)
            if cost is None and (usage.input_tokens is not None or usage.output_tokens is not None):
                # Usage is known but the model has no price: never a guess, but say why the cost is missing.
                properties[COST_FLAG] = "unknown_model"
                unpriced = True
    signals: tuple[str, ...] = ()
    if exchange.error_type == "client_disconnected" and exchange.is_stream:
        signals = ("abandoned",)
    upstream_id = response_headers.get("x-request-id") or response_headers.get("request-id")
    request_body = None if meta.omit_request else redacted_body(exchange.request_body, request_data)
    stored_response = None if meta.omit_response or decoded.problem == "undecodable" else response_body
    request_encoding = response_encoding = None
    if packer is not None:
        request_body, request_encoding = packer.request(request_body)
        if exchange.is_stream:
            reassembled = assembled.message is not None
            stored_response, response_encoding = packer.events(stored_response, reassembled)
    ttft_ms = exchange.ttft_ms
    if api == "responses" and exchange.is_stream:
        ttft_ms = first_output_ms(exchange) or ttft_ms
    values = (
        exchange.request_id,
        utc_text(exchange.started_at),
        exchange.provider,
        exchange.method,
        _utf8(exchange.path),
        _utf8(redacted_query(exchange.query)) or None,
        exchange.target_url,
        _text(model),
        int(exchange.is_stream),
        exchange.status,
        round(exchange.duration_ms, 3) if exchange.duration_ms is not None else None,
        round(ttft_ms, 3) if ttft_ms is not None else None,
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        cost,
        meta.user_id or _text(facts.user),
        meta.session_id,
        meta.session_path,
        meta.session_name,
        meta.prompt_id,
        fingerprint(facts.system_prompt),
        facts.messages_fingerprint,
        orjson.dumps(properties).decode(),
        orjson.dumps(redacted(request_headers.items())).decode(),
        request_body,
        orjson.dumps(redacted(response_headers.items())).decode() if response_headers else None,
        stored_response,
        _json_text(assembled.message) if exchange.is_stream and not meta.omit_response else None,
        None if meta.omit_response else _text(assembled.text),
        _text(assembled.finish_reason),
        upstream_id,
        exchange.error_type,
        None if exchange.error_message is None else _text(_utf8(exchange.error_message)),
        exchange.cache_reference_id,
        len(exchange.request_body)
        + (len(response_body) if decoded.problem != "undecodable" else sum(map(len, exchange.response_chunks))),
        _text(facts.model),
        _text(assembled.model),
        api,
        _text(assembled.response_id),
        _text(facts.previous_response_id),
        usage.reasoning_tokens,
        exchange.trace_id,
        exchange.span_id,
        request_encoding,
        response_encoding,
    )
    row = InsertRequest(values, derived_signals=signals, fresh_id=exchange.fresh_id, answer_problem=decoded.problem)
    billed = usage
    if exchange.provider_kind == "openai" and usage.cache_read_tokens:
        billed = usage._replace(input_tokens=openai_uncached(usage.input_tokens, usage.cache_read_tokens))
    return BuiltRow(row, facts.model, priced_model, assembled, billed, cost, unpriced)


def _utf8(text: str) -> str:
    """``text`` as valid UTF-8: bytes a client sent that are not UTF-8 (kept by aiohttp as lone surrogates)
    become U+FFFD, so the row can be stored and read back instead of being lost."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _utf8_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    if "".join(chain.from_iterable(headers.items())).isascii():
        return headers
    return CIMultiDict((_utf8(name), _utf8(value)) for name, value in headers.items())


def _text(value: str | None) -> str | None:
    """Text taken from a body with NUL replaced by U+FFFD: a body's ``"user": "a\u0000b"`` would otherwise
    cost the row on PostgreSQL, whose text columns cannot hold NUL (bodies, stored as bytes, keep it). Header
    values cannot hold NUL, and JSON columns are written by orjson, which escapes it."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")
