"""Request IDs: the client's own when it is safe, otherwise a fresh UUID.

Helicone silently replaces any ID that is not a v1-5 UUID, so feedback later sent for the client's ID
is lost. feedgate accepts any UUID or a short token of URL- and log-safe characters, and refuses anything
else with a 400 that says what is allowed.
"""

from __future__ import annotations

import re
import uuid

from feedgate.errors import BadRequest

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ALLOWED = "a UUID, or 1 to 128 characters of A-Z a-z 0-9 . _ : -"


def choose_request_id(client_value: str | None) -> str:
    """The ID for this request; raises BadRequest for an unsafe client-chosen ID."""
    if client_value is None:
        return str(uuid.uuid4())
    if _SAFE_ID.fullmatch(client_value):
        return client_value
    raise BadRequest(f"Helicone-Request-Id must be {ALLOWED}", code="invalid_request_id")


def check_id(value: str, what: str = "request ID") -> str:
    """Validate an ID that arrives in a URL path or body (feedback routes)."""
    if not _SAFE_ID.fullmatch(value):
        raise BadRequest(f"invalid {what} {value[:80]!r}: must be {ALLOWED}")
    return value
