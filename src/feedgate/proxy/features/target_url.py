"""``Helicone-Target-Url`` / ``Helicone-OpenAI-Api-Base``: send one call to another upstream, if allowed.

A header that can point the gateway anywhere turns it into an open relay (and a way to reach internal
addresses from outside), so a target is honoured only when its origin is on ``proxy.allowed_target_origins``.
Anything else is refused with 400 before any connection is opened. Like Helicone, only the target's origin
is used: the incoming path and query are appended to it.
"""

from __future__ import annotations

from collections.abc import Mapping

from feedgate.config import origin_of
from feedgate.errors import BadRequest

TARGET_URL = "Helicone-Target-Url"
OPENAI_API_BASE = "Helicone-OpenAI-Api-Base"


def allowed_origin(url: str, allowed: frozenset[str], where: str) -> str:
    """The origin to call for ``url``; BadRequest when it is not an http(s) URL or not allow-listed."""
    origin = origin_of(url)
    if origin is None:
        raise BadRequest(f"{where} must be an http(s) URL, got {url[:200]!r}", code="invalid_target_url")
    if origin not in allowed:
        raise BadRequest(
            f"{where}: {origin} is not an allowed target; allowed targets are listed in "
            "proxy.allowed_target_origins (FEEDGATE_PROXY_ALLOWED_TARGET_ORIGINS)",
            code="target_not_allowed",
        )
    return origin


def target_override(headers: Mapping[str, str], allowed: frozenset[str]) -> str | None:
    """The allow-listed origin a request asks for, or None when it names no target."""
    for name in (TARGET_URL, OPENAI_API_BASE):
        value = headers.get(name)
        if value is not None:
            return allowed_origin(value, allowed, name)
    return None
