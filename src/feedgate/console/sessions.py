"""Who is looking at the console: server-side sessions, CSRF tokens, and the login throttle.

With ``auth.keys`` set, a login with a feedgate key starts a session. The browser gets a random token in a
cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/console``); the store keeps the token's SHA-256 and the ID
of the key it was opened with, never the key or the token. A session ends at logout, after
``console.session_idle_s`` without use, ``console.session_max_s`` after its login, or when its key is removed
from the settings. The session's CSRF token is an HMAC of its token, so it is tied to that session and a page
can show it without showing the token.

Without keys the console is open (feedgate then listens on loopback only). Every POST still needs a CSRF
token: the HMAC, under a secret every process of the deployment shares, of a random per-browser cookie. The
login form uses that per-browser token too, so another site cannot log a browser in to a session of its
choosing.

Failed logins are counted per client address in memory (per process: each worker of ``serve --workers``
counts its own): after ``console.login_attempts`` failures the address waits ``console.login_wait_s``,
doubled with each further failure, up to an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from feedgate.config import Settings
from feedgate.store.utc import parse_utc_text, utc_text

SESSION_COOKIE = "feedgate_console_session"
BROWSER_COOKIE = "feedgate_console_browser"
COOKIE_PATH = "/console"
TOUCH_EVERY_S = 60.0  # a session's last use is written at most this often: a page view is not a write each time
MAX_WAIT_S = 3600.0
MAX_TRACKED_ADDRESSES = 10_000


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def key_id(key: str) -> str:
    """A key's name in the session table: a hash, so the table never holds the key itself."""
    return hashlib.sha256(b"feedgate console key:" + key.encode()).hexdigest()[:32]


def _mac(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    blocked_until: float = 0.0


@dataclass
class LoginThrottle:
    """Failed logins per client address; an address that failed too often waits before it may try again."""

    attempts: int
    wait_s: float
    failures: OrderedDict[str, _Failures] = field(default_factory=OrderedDict)

    def wait_left(self, address: str, now: float | None = None) -> float:
        """Seconds this address must still wait before a login is even checked (0: it may try now)."""
        entry = self.failures.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry.blocked_until - (time.monotonic() if now is None else now))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        entry = self.failures.pop(address, None)
        if entry is None or now - entry.last > MAX_WAIT_S:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        if entry.count >= self.attempts:
            entry.blocked_until = now + min(self.wait_s * 2 ** (entry.count - self.attempts), MAX_WAIT_S)
        self.failures[address] = entry  # most recent last, so the oldest go first when the table is full
        while len(self.failures) > MAX_TRACKED_ADDRESSES:
            self.failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)


@dataclass
class ConsoleState:
    """What the console keeps for the life of the process (on the console app as ``CONSOLE_STATE``)."""

    keys: dict[str, str]  # key ID -> key: the keys a login may use (empty: the console is open)
    secret: bytes  # signs the per-browser CSRF tokens
    idle: timedelta
    lifetime: timedelta
    always_secure: bool
    throttle: LoginThrottle

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleState:
        keys = {key_id(k.get_secret_value()): k.get_secret_value() for k in settings.auth.keys}
        # The same in every worker and instance of one deployment, so a form one process served is accepted by
        # another: from the keys when there are some. Without keys it comes from the store's address: it only
        # signs the per-browser token, which another site cannot read, and the open console's API is open
        # anyway, so a secret nobody could guess would protect nothing more (and would refuse every form
        # after a restart, or from another worker of `serve --workers`).
        material = "\0".join(sorted(keys.values())) if keys else f"open:{settings.database.url}"
        secret = hashlib.sha256(b"feedgate console csrf:" + material.encode()).digest()
        console = settings.console
        return cls(
            keys=keys,
            secret=secret,
            idle=timedelta(seconds=console.session_idle_s),
            lifetime=timedelta(seconds=console.session_max_s),
            always_secure=console.secure_cookie == "always",
            throttle=LoginThrottle(console.login_attempts, console.login_wait_s),
        )

    @property
    def open(self) -> bool:
        return not self.keys

    def match_key(self, given: str) -> str | None:
        """The ID of the key ``given`` is, compared against every key so the time taken tells nothing."""
        given_bytes = given.encode("utf-8", "surrogateescape")
        found = None
        for kid, key in self.keys.items():
            if hmac.compare_digest(given_bytes, key.encode()):
                found = kid
        return found

    def browser_csrf(self, browser_token: str) -> str:
        return _mac(self.secret, browser_token)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who sent a console request: a session (with keys) or an open console, and the CSRF token its forms carry."""

    csrf: str
    session_hash: str | None = None
    new_browser_token: str | None = None  # set: the browser has no token yet; the answer sends this one


def session_csrf(session_token: str) -> str:
    return _mac(session_token.encode("utf-8", "surrogateescape"), "csrf")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_state(row: dict[str, str], state: ConsoleState, now: datetime | None = None) -> str | None:
    """Why a stored session no longer counts ("expired", "idle", "key removed"), or None while it is good."""
    now_text = utc_text(now or datetime.now(UTC))
    if row["expires_utc"] <= now_text:
        return "expired"
    if row["key_id"] not in state.keys:
        return "key removed"
    idle_until = utc_text(parse_utc_text(row["seen_utc"]) + state.idle)
    if idle_until <= now_text:
        return "idle"
    return None


def needs_touch(row: dict[str, str], now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) - parse_utc_text(row["seen_utc"]) >= timedelta(seconds=TOUCH_EVERY_S)


def expires_at(state: ConsoleState, now: datetime | None = None) -> str:
    return utc_text((now or datetime.now(UTC)) + state.lifetime)


def set_cookie(response: web.StreamResponse, request: web.Request, state: ConsoleState, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure or state.always_secure,
    )


def clear_cookie(response: web.StreamResponse, request: web.Request, state: ConsoleState, name: str) -> None:
    response.del_cookie(name, path=COOKIE_PATH, secure=request.secure or state.always_secure, samesite="Strict")
