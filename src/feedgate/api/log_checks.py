"""What a manual log's body must hold beyond its shape, so that every accepted log becomes a row.

``POST /custom/v1/log`` (and the other log routes) answers 200 before the writer builds the row, so a
value the row cannot hold must be refused here, with a 400 naming the field, rather than accepted and
then dropped by the store:

* no NUL character in any string the row may keep (text columns of PostgreSQL cannot hold one),
* bodies nested at most ``MAX_BODY_DEPTH`` levels (the row re-encodes them; the encoder stops at 254),
* token counts in ``usage`` that fit the ``INTEGER`` columns, added up as the row adds them.

Times are bounded by the body's model (``manual_log.py``). Usage inside a raw SSE ``textBody`` is not
parsed here.
"""

from __future__ import annotations

from typing import Any

from feedgate.store.bounds import INT32_MAX, NUL_MESSAGE, first_nul, json_depth

# Deeper than any provider's request or answer (tool schemas nest, but not this far), well under the 254
# levels the JSON encoder writes.
MAX_BODY_DEPTH = 128
# Every count the row reads from ``usage`` (OpenAI, Anthropic, DeepSeek names); the details' cached count too.
_COUNTS = (
    "prompt_tokens",
    "input_tokens",
    "completion_tokens",
    "output_tokens",
    "total_tokens",
    "prompt_cache_hit_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_ADDED = ("prompt_tokens", "input_tokens", "completion_tokens", "output_tokens")
_ADDED_CACHE = ("cache_read_input_tokens", "cache_creation_input_tokens")
_DETAILS = ("prompt_tokens_details", "input_tokens_details")


def log_body_problem(data: dict[str, Any]) -> str | None:
    """The first reason the (already shape-checked) log body cannot become a row, naming the field; or None."""
    request, response = data["providerRequest"], data["providerResponse"]
    kept = {
        "providerRequest.url": request["url"],
        "providerRequest.json": request["json"],
        "providerRequest.meta": request["meta"],
        "providerResponse.json": response["json"],
        "providerResponse.textBody": response.get("textBody"),
        "providerResponse.headers": response["headers"],
    }
    for where, value in kept.items():
        if json_depth(value, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
            return f"{where}: is nested more than {MAX_BODY_DEPTH} levels deep"
        found = first_nul(value, where)
        if found is not None:
            return f"{found}: {NUL_MESSAGE}"
    return _usage_problem(response["json"])


def _usage_problem(body: Any) -> str | None:
    where = "providerResponse.json"
    candidates: list[tuple[str, Any]] = []
    if isinstance(body, dict):
        candidates.append((f"{where}.usage", body.get("usage")))
        events = body.get("streamed_data")
        if isinstance(events, list):
            for index, event in enumerate(events):
                if isinstance(event, dict):
                    candidates.append((f"{where}.streamed_data.{index}.usage", event.get("usage")))
                    message = event.get("message")
                    if isinstance(message, dict):
                        candidates.append((f"{where}.streamed_data.{index}.message.usage", message.get("usage")))
    for path, usage in candidates:
        if isinstance(usage, dict):
            problem = _counts_problem(usage, path)
            if problem is not None:
                return problem
    return None


def _count(value: Any) -> int | None:
    """A value the row would take as a token count: an integer, or a float with no fraction."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _counts_problem(usage: dict[str, Any], where: str) -> str | None:
    counted: dict[str, int] = {}
    places: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [(usage, where, _COUNTS)]
    for key in _DETAILS:
        if isinstance(usage.get(key), dict):
            places.append((usage[key], f"{where}.{key}", ("cached_tokens",)))
    for holder, path, names in places:
        for name in names:
            value = _count(holder.get(name))
            if value is None:
                continue
            if not 0 <= value <= INT32_MAX:
                return f"{path}.{name}: a token count must be from 0 to {INT32_MAX}, got {holder[name]!r}"
            if holder is usage:
                counted[name] = value
    # The row adds input and output (and Anthropic's cache counts) when no total is given.
    added = sum(counted.get(name, 0) for name in (*_ADDED, *_ADDED_CACHE))
    if added > INT32_MAX:
        return f"{where}: token counts add up to {added}, more than the {INT32_MAX} a row keeps"
    return None
