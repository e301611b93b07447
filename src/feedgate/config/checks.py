"""Rules a value must pass both in the settings and where the same kind of value arrives over HTTP.

An upstream origin (``base_url``, ``Helicone-Target-Url``) and a header that feedgate will send
(``providers[].headers``, ``Helicone-Fallbacks`` headers) are checked by the same code in both places.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Headers that describe one connection or the framing of one message: feedgate sets the ones it needs for
# its own connection and message, and sends no one else's (they could smuggle in a second request).
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
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, lower-cased, default port dropped; None if not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def header_problem(name: str, value: str) -> str | None:
    """Why a header from configuration or a Helicone header's JSON cannot be sent, or None if it can."""
    if not _TOKEN.fullmatch(name):
        return f"{name[:40]!r} is not a valid header name"
    if _BAD_VALUE.search(value):
        return f"the value of header {name[:40]!r} contains a line break or NUL"
    if name.lower() in HOP_BY_HOP:
        return f"{name[:40]!r} is a connection or framing header, which feedgate sets itself"
    return None
