"""Where a request may go: the routed provider, a ``Helicone-Target-Url``, or a ``Helicone-Fallbacks`` list.

``Helicone-Fallbacks`` is Helicone's JSON list, tried in order::

    [{"target-url": "https://api.openai.com", "headers": {"Authorization": "Bearer ..."},
      "onCodes": [429, {"from": 500, "to": 599}], "bodyKeyOverride": {"model": "gpt-4o-mini"}}, ...]

An entry whose answer has a status in its ``onCodes`` (or that cannot be reached) passes the request to the next
entry; the last entry's answer is returned whatever it is. The answer says which entry served it in
``Helicone-Fallback-Index``. Every ``target-url`` must be allow-listed like ``Helicone-Target-Url``, and the
whole list is checked before the first call. ``onCodes`` defaults to 429 and 500-599.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from feedgate.config import origin_of
from feedgate.config.checks import HOP_BY_HOP, header_problem
from feedgate.errors import BadRequest
from feedgate.proxy.features.target_url import allowed_origin, target_override
from feedgate.proxy.providers import Provider

FALLBACKS = "Helicone-Fallbacks"
_DEFAULT_CODES = ((429, 429), (500, 599))
_MAX_TARGETS = 10


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream a request may be sent to."""

    base_url: str
    # Whether the provider's configured key and headers go along: only to the provider's own origin, so a
    # key is never handed to another host.
    own_origin: bool
    headers: Mapping[str, str] = field(default_factory=dict)
    body_override: Mapping[str, Any] | None = None
    on_codes: tuple[tuple[int, int], ...] = _DEFAULT_CODES

    def falls_back_on(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.on_codes)


def _bad(why: str) -> BadRequest:
    return BadRequest(f"invalid {FALLBACKS}: {why}", code="invalid_fallbacks")


def _codes(raw: Any, where: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list):
        raise _bad(f'{where}.onCodes must be a list of status codes or {{"from", "to"}} ranges')
    codes: list[tuple[int, int]] = []
    for i, item in enumerate(raw):
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            codes.append((item, item))
        elif (
            isinstance(item, dict)
            and set(item) == {"from", "to"}
            and all(isinstance(item[k], int) and not isinstance(item[k], bool) for k in ("from", "to"))
            and 100 <= item["from"] <= item["to"] <= 599
        ):
            codes.append((item["from"], item["to"]))
        else:
            raise _bad(f'{where}.onCodes[{i}] must be a status code (100-599) or {{"from": a, "to": b}}')
    return tuple(codes)


def _headers(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise _bad(f"{where}.headers must be an object of string values")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if str(name).lower() in HOP_BY_HOP or str(name).lower().startswith("helicone-"):
            continue  # feedgate frames the request itself, and Helicone headers are its own instructions
        problem = header_problem(str(name), value)
        if problem is not None:
            raise _bad(f"{where}.headers: {problem}")
        headers[str(name)] = value
    return headers


def parse_fallbacks(value: str, provider: Provider, allowed: frozenset[str]) -> list[Target]:
    try:
        entries = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"not JSON ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise _bad("expected a non-empty JSON list of fallbacks")
    if len(entries) > _MAX_TARGETS:
        raise _bad(f"at most {_MAX_TARGETS} fallbacks")
    own = origin_of(provider.base_url)
    targets = []
    for i, entry in enumerate(entries):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            raise _bad(f"{where} must be an object")
        url = entry.get("target-url")
        if not isinstance(url, str):
            raise _bad(f"{where}.target-url is required (an allow-listed http(s) origin)")
        origin = allowed_origin(url, allowed, f"{FALLBACKS}{where}.target-url")
        override = entry.get("bodyKeyOverride")
        if override is not None and not isinstance(override, dict):
            raise _bad(f"{where}.bodyKeyOverride must be an object")
        on_codes = _codes(entry["onCodes"], where) if "onCodes" in entry else _DEFAULT_CODES
        base = provider.base_url if origin == own else origin
        targets.append(Target(base, origin == own, _headers(entry.get("headers"), where), override, on_codes))
    return targets


def plan_targets(headers: Mapping[str, str], provider: Provider, allowed: frozenset[str]) -> list[Target]:
    """The upstreams to try, in order. BadRequest (before any connection) for a malformed or foreign target."""
    fallbacks = headers.get(FALLBACKS)
    if fallbacks is not None:
        return parse_fallbacks(fallbacks, provider, allowed)
    origin = target_override(headers, allowed)
    if origin is None:
        return [Target(provider.base_url, True)]
    if origin == origin_of(provider.base_url):  # the provider itself: keep its base path, key and headers
        return [Target(provider.base_url, True)]
    return [Target(origin, False)]


def override_body(body: bytes, override: Mapping[str, Any]) -> bytes:
    """``bodyKeyOverride``: replace (or add) top-level keys of the JSON request body."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        raise _bad("bodyKeyOverride needs a JSON object request body")
    try:
        return orjson.dumps({**payload, **override})
    except TypeError:  # nested deeper than orjson writes
        raise _bad("bodyKeyOverride cannot rewrite a body nested this deep") from None
