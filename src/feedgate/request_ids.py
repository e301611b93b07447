"""Request IDs: the client's own when it is safe, otherwise a fresh time-ordered UUID.

Helicone silently replaces any ID that is not a v1-5 UUID, so feedback later sent for the client's ID
is lost. feedgate accepts any UUID or a short token of URL- and log-safe characters, and refuses anything
else with a 400 that says what is allowed.
"""

from __future__ import annotations

import os
import re
import time

from feedgate.errors import BadRequest

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"  # also what the OpenAPI document gives for IDs in paths
_SAFE_ID = re.compile(ID_PATTERN)
ALLOWED = "a UUID, or 1 to 128 characters of A-Z a-z 0-9 . _ : -"


class RequestIds:
    """Time-ordered (version 7, RFC 9562) UUID strings, drawing randomness from the OS in blocks.

    Version 7 puts the millisecond clock first, so IDs made one after another sort together: each new log
    row lands at the right edge of the request ID index instead of at a random page, which is most of what
    a random (version 4) key costs an insert once the store holds a few thousand rows. The other 74 bits
    are random, so IDs stay unguessable. ``str(uuid.uuid4())`` would also make a system call and a UUID
    object per request; a block of ``os.urandom`` serves 409 IDs for the price of one call.
    """

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def new(self) -> str:
        at = self._at
        if at + 10 > len(self._pool):
            self._pool, at = os.urandom(4090), 0
        self._at = at + 10
        r = self._pool[at : at + 10].hex()
        ms = f"{time.time_ns() // 1_000_000:012x}"
        # version nibble 7 and the 0b10 variant bits overwrite random bits: 74 random bits remain
        return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{'89ab'[int(r[3], 16) & 3]}{r[4:7]}-{r[7:19]}"


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
