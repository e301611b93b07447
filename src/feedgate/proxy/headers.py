"""Which headers cross the gateway, which are kept in the log, and what the Helicone ones mean.

Hop-by-hop headers never cross. ``Helicone-*`` headers are feedgate's instructions, not the provider's,
so they are stripped before the upstream call. Secrets are redacted before anything reaches the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "set-cookie", "helicone-auth", "proxy-authorization"}
)
REDACTED = "[redacted]"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# Response headers feedgate recomputes (aiohttp sets length and framing for what it sends).
RESPONSE_DROP = HOP_BY_HOP | {"content-encoding"}


def upstream_headers(incoming: Mapping[str, str]) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop and Helicone ones."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith(("helicone-", "feedgate-")):
            continue
        out.add(name, value)
    if "Accept-Encoding" not in out:
        # Without the header any encoding is acceptable (RFC 9110), and the answer, passed through as it
        # comes, could reach a client that cannot decode it.
        out["Accept-Encoding"] = "identity"
    return out


def header_problem(name: str, value: str) -> str | None:
    """Why a header from configuration or a Helicone header's JSON cannot be sent, or None if it can."""
    if not _TOKEN.fullmatch(name):
        return f"{name[:40]!r} is not a valid header name"
    if _BAD_VALUE.search(value):
        return f"the value of header {name[:40]!r} contains a line break or NUL"
    return None


def client_headers(upstream: Mapping[str, str], *, keep_encoding: bool) -> CIMultiDict[str]:
    """The upstream's response headers as the client should see them."""
    drop = HOP_BY_HOP if keep_encoding else RESPONSE_DROP
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


def redacted(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers safe to store: secrets replaced, repeated names joined."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        shown = REDACTED if lower in SECRET_HEADERS else value
        out[lower] = f"{out[lower]}, {shown}" if lower in out else shown
    return out


_SECRET_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"})


def redacted_query(query: str) -> str:
    """A query string safe to store: values of key-like parameters (Gemini's ``?key=``) replaced."""
    if not query or "=" not in query:
        return query
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and name.lower() in _SECRET_PARAMS else part)
    return "&".join(parts)


@dataclass(slots=True)
class HeliconeMeta:
    """What a request's ``Helicone-*`` headers ask of the log."""

    user_id: str | None = None
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    prompt_id: str | None = None
    model_override: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    properties: dict[str, str] = field(default_factory=dict)


_PROPERTY_PREFIX = "helicone-property-"


def helicone_meta(headers: Mapping[str, str]) -> HeliconeMeta:
    meta = HeliconeMeta()
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith("helicone-"):
            continue
        if lower.startswith(_PROPERTY_PREFIX) and len(lower) > len(_PROPERTY_PREFIX):
            # Helicone lower-cases property names (its Headers iteration does); so do we.
            meta.properties[lower[len(_PROPERTY_PREFIX) :]] = value
        elif lower == "helicone-user-id":
            meta.user_id = value
        elif lower == "helicone-session-id":
            meta.session_id = value
        elif lower == "helicone-session-path":
            meta.session_path = value
        elif lower == "helicone-session-name":
            meta.session_name = value
        elif lower == "helicone-prompt-id":
            meta.prompt_id = value
        elif lower == "helicone-model-override":
            meta.model_override = value
        elif lower == "helicone-omit-request":
            meta.omit_request = value.strip().lower() == "true"
        elif lower == "helicone-omit-response":
            meta.omit_response = value.strip().lower() == "true"
    return meta
