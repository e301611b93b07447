"""Stored rows in Helicone's ``HeliconeRequest`` shape, so tools written for Helicone read them as is.

The answer reads the same whatever API the call used (``api``: chat, responses, messages, completions,
embeddings or other): ``response_text``, ``finish_reason`` and ``tool_calls`` (OpenAI chat tool calls, from a
chat answer's ``tool_calls``, an Anthropic answer's ``tool_use`` blocks or a Responses answer's
``function_call`` items). ``request_model`` is the model asked for, ``response_model`` the one that answered,
and ``model`` the one stats group by (the answered one when known).
"""

from __future__ import annotations

from typing import Any

import orjson

from feedgate.analysis.chat_messages import answer_tool_calls
from feedgate.store.bodies import events_dropped


def _body(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    if isinstance(raw, memoryview):
        raw = bytes(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _json(raw: str | None, default: Any) -> Any:
    return default if raw is None else orjson.loads(raw)


def _as_stored(raw: bytes | str | None, parsed: Any) -> Any:
    """``parsed`` to be written as the stored text itself when ``raw`` is JSON on one line: orjson copies a
    Fragment where it would serialise the parsed tree again, the largest cost of a jsonl export's row.
    Anything that did not parse, or holds a line break (whitespace between tokens, which a JSONL line must
    not hold), stays as parsed, so a line reads the same either way."""
    if raw is None or isinstance(parsed, str):  # None, unparsed text, or a JSON string: cheap to write
        return parsed
    if isinstance(raw, memoryview):
        raw = bytes(raw)
    newline, carriage = (b"\n", b"\r") if isinstance(raw, bytes) else ("\n", "\r")
    if newline in raw or carriage in raw:  # type: ignore[operator]
        return parsed
    return orjson.Fragment(raw)


def helicone_row(row: dict[str, Any], attempts: int | None = None, *, as_stored: bool = False) -> dict[str, Any]:
    """One stored attempt as Helicone names things, plus feedgate's own fields.

    ``as_stored``: the bodies and JSON columns are the stored JSON text (``orjson.Fragment``) where they
    can be, for a caller that only serialises the row; the other fields are the same."""
    is_stream = bool(row["is_stream"])
    response_raw = row["response_json"] if is_stream else row["response_body"]
    response_body = _body(response_raw)
    request_body = _body(row["request_body"])
    properties = _json(row["properties_json"], {})
    request_headers = _json(row["request_headers_json"], {})
    out = {
        "request_id": row["request_id"],
        "request_created_at": row["datetime_utc"],
        "response_status": row["status"] if row["status"] is not None else _status_for(row["error_type"]),
        "model": row["model"],
        # Rows logged before the two were kept apart (no api) only had the effective model.
        "request_model": row["request_model"] if row["api"] is not None else row["model"],
        "response_model": row["response_model"],
        "api": row["api"],
        "provider": row["provider"],
        "request_path": row["path"],
        "target_url": row["target_url"],
        "request_body": request_body,
        "response_body": response_body,
        "prompt_tokens": row["input_tokens"],
        "completion_tokens": row["output_tokens"],
        "total_tokens": row["total_tokens"],
        "prompt_cache_read_tokens": row["cache_read_tokens"],
        "prompt_cache_write_tokens": row["cache_write_tokens"],
        "reasoning_tokens": row["reasoning_tokens"],
        "delay_ms": row["duration_ms"],
        "time_to_first_token": row["ttft_ms"],
        "cost": row["cost_usd"],
        "costUSD": row["cost_usd"],
        "request_user_id": row["user_id"],
        "request_properties": properties,
        "properties": properties,
        "session_id": row["session_id"],
        "session_path": row["session_path"],
        "session_name": row["session_name"],
        "prompt_id": row["prompt_id"],
        "cache_reference_id": row["cache_reference_id"],
        "is_stream": is_stream,
        "attempt": row["attempt"],
        "attempts": attempts if attempts is not None else row["attempt"],
        "upstream_request_id": row["upstream_request_id"],
        "error_type": row["error_type"],
        "error_message": row["error_message"],
        "response_text": row["response_text"],
        "finish_reason": row["finish_reason"],
        "tool_calls": answer_tool_calls(response_body),
        "response_id": row["response_id"],
        "previous_response_id": row["previous_response_id"],
        "request_headers": request_headers,
        # The OpenTelemetry trace of a traced call (null otherwise): where to find it in the tracing backend.
        "trace_id": row.get("trace_id"),
        "span_id": row.get("span_id"),
    }
    if as_stored:
        out["request_body"] = _as_stored(row["request_body"], request_body)
        out["response_body"] = _as_stored(response_raw, response_body)
        out["request_headers"] = _as_stored(row["request_headers_json"], request_headers)
        out["request_properties"] = out["properties"] = _as_stored(row["properties_json"], properties)
    if is_stream:
        # The raw events as the provider sent them; with log.stream_events: none they were not kept (null, and
        # response_events_kept false), and response_body, the reassembled message, is the record.
        out["response_events"] = _body_text(row["response_body"])
        out["response_events_kept"] = not events_dropped(row)
    return out


def _body_text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return bytes(raw).decode("utf-8", "replace")


def _status_for(error_type: str | None) -> int | None:
    # Helicone's negative statuses for exchanges that never got a status line.
    return {"upstream_timeout": -2, "client_disconnected": -3, "upstream_unreachable": -100}.get(error_type or "")


def annotated(row: dict[str, Any], note: dict[str, Any], *, as_stored: bool = False) -> dict[str, Any]:
    """``helicone_row`` with the feedback ``note`` (ratings, scores, properties set later) folded in."""
    note = dict(note)
    later = note.pop("later_properties")
    out = helicone_row(row, attempts=row["attempt"], as_stored=as_stored and not later)
    if later:
        # Properties set after the fact (PUT .../property) override those sent as headers.
        out["request_properties"] = out["properties"] = {**out["properties"], **later}
    out.update(note)
    return out
