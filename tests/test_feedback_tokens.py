"""Feedback tokens themselves: signed and checked, altered, malformed, expired, rotated; their settings.

The gateway's side (the header on proxied answers, the routes a token opens and the ones it does not, the
mint route, CORS) is in ``test_feedback_token_routes.py``; several instances sharing one PostgreSQL in
``test_instances.py``; tokens kept out of logs and the store in ``test_secrets_never_kept.py``.
"""

from __future__ import annotations

import base64
import hmac
import re
import time

import pytest

from feedgate.config import load_settings, masked
from feedgate.errors import ConfigError, Unauthorized
from feedgate.feedback_tokens import PURPOSES, FeedbackTokens, Grant

SECRET = "current-secret-" + "c" * 32
OLD_SECRET = "previous-secret-" + "p" * 32
UUID_ID = "0193b0c4-2f6e-7a3b-9c1d-5e8f7a6b4c3d"


# ---------------------------------------------------------------------------------------- the tokens themselves


def test_a_token_states_its_id_what_it_allows_and_its_expiry_compactly() -> None:
    tokens = FeedbackTokens([SECRET], ttl_s=3600, clock=lambda: 1_800_000_000.4)
    token = tokens.for_request(UUID_ID)
    assert re.fullmatch(r"fgt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token), token  # URL-safe, no padding
    assert len(token) <= 120  # fits a header and an HTML attribute comfortably
    assert tokens.check(token) == Grant("request", UUID_ID, frozenset(PURPOSES), 1_800_003_600)
    session = tokens.mint("session", "ticket:4711", ["signal"])
    assert tokens.check(session) == Grant("session", "ticket:4711", frozenset({"signal"}), 1_800_003_600)
    assert tokens.mint("request", UUID_ID) == token  # the header's token is the mint route's, for all purposes


def test_the_format_is_the_documented_one() -> None:
    """A token built by hand from docs/feedback-tokens.md is accepted: the docs describe the real format."""
    payload = base64.urlsafe_b64encode(b"r:3:1800003600:msg-123").rstrip(b"=")
    signed = b"fgt1." + payload
    signature = base64.urlsafe_b64encode(hmac.digest(SECRET.encode(), signed, "sha256")).rstrip(b"=")
    tokens = FeedbackTokens([SECRET], 3600, clock=lambda: 1_800_000_000.0)
    grant = tokens.check((signed + b"." + signature).decode())
    assert grant == Grant("request", "msg-123", frozenset({"feedback", "score"}), 1_800_003_600)


def test_an_altered_token_is_refused_for_its_signature() -> None:
    tokens = FeedbackTokens([SECRET], 3600)
    token = tokens.for_request("msg-1")
    prefix, payload, signature = token.split(".")
    other_payload = tokens.for_request("msg-2").split(".")[1]
    longer = base64.urlsafe_b64encode(f"r:7:{int(time.time()) + 10**8}:msg-1".encode()).rstrip(b"=").decode()
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for altered in (
        f"{prefix}.{other_payload}.{signature}",  # another ID under this signature
        f"{prefix}.{longer}.{signature}",  # a later expiry
        f"{prefix}.{payload}.{flipped}",
        f"{prefix}.{payload}.{signature}=",
        FeedbackTokens(["an-attacker-secret-" + "a" * 32], 3600).for_request("msg-1"),
    ):
        with pytest.raises(Unauthorized, match="signature does not match") as refused_with:
            tokens.check(altered)
        assert refused_with.value.status == 401


def test_a_malformed_token_is_refused_as_malformed() -> None:
    tokens = FeedbackTokens([SECRET], 3600)
    token = tokens.for_request("msg-1")
    for malformed in ("fgt1.abc", "fgt2." + token[5:], token + ".more", "fgt1", "fgt1.a.b.c", "fgt1é.x"):
        with pytest.raises(Unauthorized, match="malformed feedback token"):
            tokens.check(malformed)
    # Signed with the secret but not a statement feedgate makes: still refused, never a 500.
    for junk in (b"x:7:1:msg", b"r:0:1800003600:msg", b"r:7:soon:msg", b"r:7:1800003600:", b"\xff\xfe"):
        signed = b"fgt1." + base64.urlsafe_b64encode(junk).rstrip(b"=")
        signature = base64.urlsafe_b64encode(hmac.digest(SECRET.encode(), signed, "sha256")).rstrip(b"=")
        with pytest.raises(Unauthorized, match="payload cannot be read"):
            tokens.check((signed + b"." + signature).decode())
    padded = b"fgt1.cjo3=="  # padding is not the format, even under a good signature
    signature = base64.urlsafe_b64encode(hmac.digest(SECRET.encode(), padded, "sha256")).rstrip(b"=")
    with pytest.raises(Unauthorized, match="payload cannot be read"):
        tokens.check((padded + b"." + signature).decode())


def test_a_token_needs_a_secret_and_a_purpose() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        FeedbackTokens([], 3600)
    with pytest.raises(ValueError, match="at least one purpose"):
        FeedbackTokens([SECRET], 3600).mint("request", "msg-1", [])


def test_a_token_expires_at_its_stated_time() -> None:
    tokens = FeedbackTokens([SECRET], ttl_s=60, clock=lambda: 1_800_000_000.0)
    grant = tokens.check(tokens.for_request("msg-1"))
    assert tokens.check(tokens.for_request("msg-1"), now=grant.expires_at - 0.5) == grant
    with pytest.raises(Unauthorized, match=r"expired feedback token: it expired at 2027-01-15T08:01:00Z"):
        tokens.check(tokens.for_request("msg-1"), now=grant.expires_at)


def test_the_first_secret_signs_and_every_secret_verifies() -> None:
    before = FeedbackTokens([OLD_SECRET], 3600)
    in_flight = before.for_request("msg-1")
    rotating = FeedbackTokens([SECRET, OLD_SECRET], 3600)
    assert rotating.check(in_flight).target_id == "msg-1"  # still in the list: still valid
    fresh = rotating.for_request("msg-2")
    with pytest.raises(Unauthorized):
        before.check(fresh)  # signed by the new first secret
    rotated = FeedbackTokens([SECRET], 3600)
    assert rotated.check(fresh).target_id == "msg-2"
    with pytest.raises(Unauthorized, match="no longer in feedback.token_secrets"):
        rotated.check(in_flight)  # its secret was removed


# ---------------------------------------------------------------------------------------- settings


def test_token_settings_from_the_environment_and_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FG_TOKEN_SECRET", SECRET)
    settings = load_settings(
        environ={
            "FEEDGATE_FEEDBACK_TOKEN_SECRETS": f"os.environ/FG_TOKEN_SECRET, {OLD_SECRET}",
            "FEEDGATE_FEEDBACK_TOKEN_TTL_S": "3600",
        }
    )
    assert [s.get_secret_value() for s in settings.feedback.token_secrets] == [SECRET, OLD_SECRET]
    assert settings.feedback.token_ttl_s == 3600
    assert load_settings(environ={}).feedback.token_ttl_s == 7 * 24 * 3600
    shown = masked(settings)
    assert shown["feedback"]["token_secrets"] == ["***", "***"]
    assert SECRET not in str(shown) and OLD_SECRET not in str(shown)


def test_a_short_token_secret_is_a_config_error_that_does_not_print_it() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={}, overrides={"feedback": {"token_secrets": [SECRET, "hunter2-hunter2"]}})
    message = str(error.value)
    assert message.startswith("feedback.token_secrets: secret 2 has 15 characters; each needs at least 32")
    assert "hunter2" not in message
    with pytest.raises(ConfigError, match="token_ttl_s"):
        load_settings(environ={}, overrides={"feedback": {"token_secrets": [SECRET], "token_ttl_s": 0}})
