"""What never reaches the store or the log: credentials in headers and in query strings, replaced."""

from __future__ import annotations

from collections.abc import Iterable

SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "cookie", "set-cookie", "helicone-auth", "proxy-authorization"}
)
REDACTED = "[redacted]"


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
