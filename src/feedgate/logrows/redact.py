"""What never reaches the store or the log: credentials, wherever a client put them.

One rule decides what a credential is, by name, for header names, query parameter names, JSON keys and
property names alike (``is_credential``): a name whose words include ``key``, ``token``, ``secret``,
``password``, ``auth``, ``signature``, ``cookie`` and the like (``x-api-key``, ``x-goog-api-key``,
``access_token``, ``client_secret``, ``apiKey``, ``Helicone-Auth``, ``?sig=``). There is no list of names
known to be safe: a new provider's key header is caught by the same rule. Words, not substrings, so
``max_tokens`` and ``author`` are not taken for one.

Values are searched too, where clients nest credentials: a URL's query (``Helicone-Target-Url:
https://host?key=...``), and JSON (``Helicone-Fallbacks: [{"headers": {"api-key": ...}}]``, a request body's
``"api_key"``). In JSON only string values under a credential name are replaced: a JSON schema describing a
``password`` field (an object) is not a credential and stays as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

REDACTED = "[redacted]"
_CREDENTIAL_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "signature",
        "sig",
        "cookie",
        "bearer",
    }
)
# Words of a name: split at non-letters and at lower-to-upper case changes (apiKey -> api, key).
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A cheap look before parsing a JSON body: some quoted name containing a credential word.
_MAYBE_IN_JSON = re.compile(
    rb'"[^"]{0,40}(?i:key|token|secret|passw|pwd|auth|credential|sig|cookie|bearer)[^"]{0,40}"\s*:\s*"'
)


def is_credential(name: str) -> bool:
    """Whether a header, query parameter, JSON key or property called ``name`` holds a credential."""
    lower = name.lower()
    if lower in _CREDENTIAL_WORDS:
        return True
    return any(word.lower() in _CREDENTIAL_WORDS for word in _WORDS.findall(name))


def redacted(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers safe to store: credentials replaced, credentials inside URL or JSON values replaced, repeated
    names joined."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        shown = REDACTED if is_credential(lower) else redacted_value(value)
        out[lower] = f"{out[lower]}, {shown}" if lower in out else shown
    return out


def redacted_value(value: str) -> str:
    """A header or property value with the credentials it nests (a URL's query, JSON) replaced."""
    stripped = value.lstrip()
    if stripped.startswith(("http://", "https://")) and "?" in value:
        base, _, query = value.partition("?")
        return f"{base}?{redacted_query(query)}"
    if stripped.startswith(("{", "[")):
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        cleaned = redacted_json(data)
        return value if cleaned == data else orjson.dumps(cleaned).decode()
    return value


def redacted_query(query: str) -> str:
    """A query string safe to store: values of credential parameters (Gemini's ``?key=``) replaced."""
    if not query or "=" not in query:
        return query
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if sep and is_credential(name) else part)
    return "&".join(parts)


def redacted_json(data: Any) -> Any:
    """JSON with the string values under credential names replaced, and URLs' credential parameters too."""
    if isinstance(data, dict):
        return {
            key: REDACTED if isinstance(item, str) and is_credential(str(key)) else redacted_json(item)
            for key, item in data.items()
        }
    if isinstance(data, list):
        return [redacted_json(item) for item in data]
    if isinstance(data, str) and data.startswith(("http://", "https://")) and "?" in data:
        return redacted_value(data)
    return data


def redacted_body(body: bytes) -> bytes:
    """A JSON request body with credential fields replaced; any other body as it is."""
    if not _MAYBE_IN_JSON.search(body):
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    cleaned = redacted_json(data)
    return body if cleaned == data else orjson.dumps(cleaned)


def redacted_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """Properties safe to store: one named like a credential is replaced, nested credentials too."""
    return {name: REDACTED if is_credential(name) else redacted_value(value) for name, value in properties.items()}
