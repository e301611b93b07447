"""Feedback tokens: a signed statement that lets a browser rate one answer (or one session) and nothing else.

A feedgate key reads every logged prompt, so it cannot go into a web page. A feedback token can: it names
one request ID (or session ID), what it allows, and when it expires, signed with HMAC-SHA256 under
``feedback.token_secrets``. Checking one needs the secrets and the clock, no database, so any instance
sharing the secrets accepts a token another instance made.

The format (docs/feedback-tokens.md), all URL-safe base64 without padding, about 120 characters::

    fgt1.<payload>.<signature>
    payload   = base64url("<scope>:<allow>:<expires>:<id>")
                scope: r (a request ID) or s (a session ID); allow: a bitmask of ALLOW_BITS (7: all three);
                expires: Unix seconds; id: the ID itself, last, so it may hold ':'
    signature = base64url(HMAC-SHA256(secret, "fgt1.<payload>"))

The first secret signs; every secret verifies, so a secret is rotated by putting a new one first and
removing the old one once the tokens it signed have expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from feedgate.errors import Forbidden, Unauthorized

PREFIX = "fgt1."
HEADER = "Feedgate-Feedback-Token"
Purpose = Literal["feedback", "score", "signal"]
Scope = Literal["request", "session"]
PURPOSES: tuple[Purpose, ...] = ("feedback", "score", "signal")
ALLOW_BITS: dict[Purpose, int] = {"feedback": 1, "score": 2, "signal": 4}
_ALL_BITS = 7
_SCOPE_LETTER: dict[Scope, str] = {"request": "r", "session": "s"}
_LETTER_SCOPE: dict[str, Scope] = {"r": "request", "s": "session"}
_PREFIX_BYTES = PREFIX.encode()


@dataclass(frozen=True, slots=True)
class Grant:
    """What a checked token allows: ``purposes`` on the request or session ``target_id`` until ``expires_at``."""

    scope: Scope
    target_id: str
    purposes: frozenset[Purpose]
    expires_at: int  # Unix seconds

    def require(self, purpose: Purpose) -> None:
        """``Forbidden`` unless the token allows ``purpose``."""
        if purpose not in self.purposes:
            allowed = ", ".join(p for p in PURPOSES if p in self.purposes)
            raise Forbidden(
                f"this feedback token does not allow {purpose} (it allows: {allowed})", code="feedback_token_purpose"
            )


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(text: str) -> bytes:
    """Strict URL-safe base64 without padding: any other character, or padding, is a malformed token."""
    if "=" in text:
        raise ValueError("padding")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def utc_iso(unix_s: int) -> str:
    """Unix seconds as ``2026-12-10T17:00:00Z``, as the API writes times."""
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FeedbackTokens:
    """Makes and checks feedback tokens with the configured secrets (the first signs, all verify)."""

    def __init__(self, secrets: Sequence[str], ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        if not secrets:
            raise ValueError("feedback tokens need at least one secret")
        # Each secret's HMAC keyed once; a copy per token skips keying it (hashing the padded key) again.
        self._macs = tuple(hmac.new(secret.encode(), digestmod=hashlib.sha256) for secret in secrets)
        self._signer = self._macs[0]
        self.ttl_s = ttl_s
        self._clock = clock

    def _signature(self, mac: hmac.HMAC, signed: bytes) -> bytes:
        keyed = mac.copy()
        keyed.update(signed)
        return _b64(keyed.digest())

    def expiry(self, now: float | None = None) -> int:
        """When a token made at ``now`` (default: the clock) expires, in Unix seconds."""
        return int(self._clock() if now is None else now) + self.ttl_s

    def for_request(self, request_id: str) -> str:
        """A token for every purpose on one request ID: the proxied answer's header, so kept lean."""
        signed = _PREFIX_BYTES + _b64(f"r:7:{int(self._clock()) + self.ttl_s}:{request_id}".encode())
        return (signed + b"." + self._signature(self._signer, signed)).decode()

    def mint(
        self,
        scope: Scope,
        target_id: str,
        purposes: Iterable[Purpose] = PURPOSES,
        *,
        expires_at: int | None = None,
    ) -> str:
        """A token for ``purposes`` on a request or session ID, expiring at ``expires_at`` (default: the TTL)."""
        bits = 0
        for purpose in purposes:
            bits |= ALLOW_BITS[purpose]
        if not bits:
            raise ValueError("a token must allow at least one purpose")
        expires = self.expiry() if expires_at is None else expires_at
        signed = _PREFIX_BYTES + _b64(f"{_SCOPE_LETTER[scope]}:{bits}:{expires}:{target_id}".encode())
        return (signed + b"." + self._signature(self._signer, signed)).decode()

    def check(self, token: str, now: float | None = None) -> Grant:
        """The grant a token carries; ``Unauthorized`` (saying which case) when it is malformed, altered or expired.

        The signature is checked before the payload is read, against every secret (so the time taken does not
        tell which secret nearly matched), each comparison in constant time.
        """
        signed, dot, signature = token.rpartition(".")
        if not signed.startswith(PREFIX) or not dot or signed.count(".") != 1:
            raise Unauthorized(
                "malformed feedback token: expected fgt1.<payload>.<signature>", code="malformed_feedback_token"
            )
        signed_bytes = signed.encode("ascii", "replace")
        given = signature.encode("ascii", "replace")
        matched = False
        for mac in self._macs:
            matched |= hmac.compare_digest(self._signature(mac, signed_bytes), given)
        if not matched:
            raise Unauthorized(
                "invalid feedback token: its signature does not match (altered, or signed by a secret no longer in "
                "feedback.token_secrets)",
                code="invalid_feedback_token",
            )
        grant = _read_payload(signed[len(PREFIX) :])
        if grant.expires_at <= (self._clock() if now is None else now):
            raise Unauthorized(
                f"expired feedback token: it expired at {utc_iso(grant.expires_at)}; ask for a new one",
                code="expired_feedback_token",
            )
        return grant


def _read_payload(payload: str) -> Grant:
    """The grant in a signed payload. Only feedgate signs, so a failure here means a secret signed junk."""
    try:
        letter, bits_text, expires_text, target_id = _unb64(payload).decode().split(":", 3)
        scope, bits, expires_at = _LETTER_SCOPE[letter], int(bits_text), int(expires_text)
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise Unauthorized(
            "malformed feedback token: its payload cannot be read", code="malformed_feedback_token"
        ) from None
    purposes = frozenset(purpose for purpose, bit in ALLOW_BITS.items() if bits & bit)
    if not purposes or bits & ~_ALL_BITS or not target_id:
        raise Unauthorized("malformed feedback token: its payload cannot be read", code="malformed_feedback_token")
    return Grant(scope, target_id, purposes, expires_at)
