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
from functools import lru_cache
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
_URL_PREFIXES = ("http://", "https://")


# Cached because every logged call asks about the same few dozen header and JSON key names; the bound keeps
# a client that invents names from growing it.
@lru_cache(maxsize=4096)
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
    if not value or value[0] not in "hH{[ \t":
        return value  # the common case, a plain token or word, decided without stripping
    stripped = value.lstrip()
    if stripped.startswith(_URL_PREFIXES) and "?" in value:
        base, _, query = value.partition("?")
        return f"{base}?{redacted_query(query)}"
    if stripped.startswith(("{", "[")):
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if not _holds_credential(data):
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
    if isinstance(data, str) and data.startswith(_URL_PREFIXES) and "?" in data:
        return redacted_value(data)
    return data


def _holds_credential(data: Any) -> bool:
    """Whether ``redacted_json`` would change ``data``: a look that builds nothing, so the usual body, which
    holds no credential, is parsed once, walked once and stored as sent."""
    if isinstance(data, dict):
        for key, item in data.items():
            if isinstance(item, str):
                if is_credential(key) or (item.startswith(_URL_PREFIXES) and "?" in item):
                    return True
            elif isinstance(item, (dict, list)) and _holds_credential(item):
                return True
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, str):
                if item.startswith(_URL_PREFIXES) and "?" in item:
                    return True
            elif isinstance(item, (dict, list)) and _holds_credential(item):
                return True
    return False


def redacted_body(body: bytes, data: Any) -> bytes:
    """A request body with credential fields replaced, given the body and what it parsed to (``None`` when
    it is not JSON, which is stored as it is)."""
    if not _holds_credential(data):
        return body
    cleaned = redacted_json(data)
    return body if cleaned == data else orjson.dumps(cleaned)


def redacted_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """Properties safe to store: one named like a credential is replaced, nested credentials too."""
    return {name: REDACTED if is_credential(name) else redacted_value(value) for name, value in properties.items()}
