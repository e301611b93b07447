"""Request IDs: the client's own when it is safe, otherwise a fresh UUID.

Helicone silently replaces any ID that is not a v1-5 UUID, so feedback later sent for the client's ID
is lost. feedgate accepts any UUID or a short token of URL- and log-safe characters, and refuses anything
else with a 400 that says what is allowed.
"""

from __future__ import annotations

import os
import re

from feedgate.errors import BadRequest

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ALLOWED = "a UUID, or 1 to 128 characters of A-Z a-z 0-9 . _ : -"


class RequestIds:
    """Random (version 4) UUID strings, drawing randomness from the OS in blocks.

    ``str(uuid.uuid4())`` makes a system call and a UUID object per request; on the proxy's hot path a
    block of ``os.urandom`` serves 256 IDs for the price of one call.
    """

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def new(self) -> str:
        at = self._at
        if at + 16 > len(self._pool):
            self._pool, at = os.urandom(4096), 0
        self._at = at + 16
        h = self._pool[at : at + 16].hex()
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def choose_request_id(client_value: str | None, ids: RequestIds) -> str:
    """The ID for this request; raises BadRequest for an unsafe client-chosen ID."""
    if client_value is None:
        return ids.new()
    if _SAFE_ID.fullmatch(client_value):
        return client_value
    raise BadRequest(f"Helicone-Request-Id must be {ALLOWED}", code="invalid_request_id")


def check_id(value: str, what: str = "request ID") -> str:
    """Validate an ID that arrives in a URL path or body (feedback routes)."""
    if not _SAFE_ID.fullmatch(value):
        raise BadRequest(f"invalid {what} {value[:80]!r}: must be {ALLOWED}")
    return value
