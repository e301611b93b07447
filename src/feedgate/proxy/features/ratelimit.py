"""``Helicone-RateLimit-Policy``: per-tenant quotas in Helicone's syntax, with its response headers.

Policy: ``<quota>;w=<seconds>[;u=request|cents][;s=user|<property>]``. The window slides: a unit counts for
``w`` seconds after it was spent. Requests over the quota get 429 before any upstream call. A malformed
policy gets 400 saying what is wrong (Helicone ignores it silently, so a typo removes the limit unnoticed).

Quotas are kept per tenant, the hash of the caller's ``Helicone-Auth`` (else ``Authorization``), as Helicone
keys them on the caller's key, and per segment: everyone (``global``), each ``Helicone-User-Id`` (``s=user``)
or each value of ``Helicone-Property-<name>`` (``s=<name>``).

``u=cents`` counts money, which is only known once the answer is in: a request is admitted while the window
holds less than the quota, and its cost (the price table applied to the usage in its answer, the same
number the log stores) is counted after the answer was sent. So concurrent requests can overshoot the quota by
what they cost together; an answer without usage or with an unpriced model counts 0.

Counters live behind ``RateCounter``; ``LocalRateCounter`` keeps them in this process. A shared backend
(Redis) for several instances implements the same two methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from feedgate.errors import BadRequest, RateLimited
from feedgate.logrows.assemble import request_facts
from feedgate.logrows.build import exchange_cost
from feedgate.logrows.exchange import Exchange
from feedgate.logrows.pricing import PriceTable

log = logging.getLogger("feedgate.ratelimit")
RATE_LIMIT_POLICY = "Helicone-RateLimit-Policy"
_NUMBER = re.compile(r"[0-9]{1,15}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SWEEP_EVERY = 1024


@dataclass(frozen=True, slots=True)
class RatePolicy:
    quota: int
    window_s: int
    unit: Literal["request", "cents"]
    segment: str | None

    @property
    def header(self) -> str:
        """The policy as Helicone echoes it in ``Helicone-RateLimit-Policy`` (segment omitted)."""
        return f"{self.quota};w={self.window_s};u={self.unit}"


def _bad(policy: str, why: str) -> BadRequest:
    return BadRequest(
        f"invalid {RATE_LIMIT_POLICY} {policy[:100]!r}: {why}; expected <quota>;w=<seconds>[;u=request|cents]"
        "[;s=user|<property>]",
        code="invalid_rate_limit_policy",
    )


def parse_policy(value: str) -> RatePolicy:
    text = value.strip()
    first, *rest = text.split(";")
    if not _NUMBER.fullmatch(first.strip()):
        raise _bad(text, "it must start with the quota, a whole number")
    params: dict[str, str] = {}
    for part in rest:
        name, sep, arg = part.strip().partition("=")
        if not sep or not arg:
            raise _bad(text, f"{part.strip()!r} is not name=value")
        if name not in ("w", "u", "s"):
            raise _bad(text, f"unknown parameter {name!r} (allowed: w, u, s)")
        if name in params:
            raise _bad(text, f"{name}= is given twice")
        params[name] = arg.strip()
    if "w" not in params:
        raise _bad(text, "the window w=<seconds> is missing")
    if not _NUMBER.fullmatch(params["w"]) or int(params["w"]) < 1:
        raise _bad(text, "w must be a whole number of seconds, at least 1")
    unit = params.get("u", "request")
    if unit not in ("request", "cents"):
        raise _bad(text, f"u must be request or cents, not {unit!r}")
    segment = params.get("s")
    if segment is not None and not _SEGMENT.fullmatch(segment):
        raise _bad(text, "s must be user or a property name (letters, digits, _ and -)")
    return RatePolicy(int(first), int(params["w"]), "cents" if unit == "cents" else "request", segment)


def segment_of(policy: RatePolicy, headers: Mapping[str, str], body: bytes) -> str:
    """Which counter of the tenant this request draws on; BadRequest when the segment value is missing."""
    if policy.segment is None:
        return "global"
    if policy.segment == "user":
        # Helicone falls back to the body's "user" field when the header is absent; so do we.
        user = headers.get("Helicone-User-Id") or request_facts(body).user
        if not user:
            raise BadRequest(f"{RATE_LIMIT_POLICY} with s=user needs a Helicone-User-Id header (or a body 'user')")
        return f"user={user}"
    name = policy.segment.lower()
    value = headers.get(f"Helicone-Property-{name}")
    if value is None:
        raise BadRequest(f"{RATE_LIMIT_POLICY} with s={policy.segment} needs a Helicone-Property-{name} header")
    return f"{name}={value}"


def tenant_of(headers: Mapping[str, str]) -> str:
    credential = headers.get("Helicone-Auth") or headers.get("Authorization") or ""
    return hashlib.sha256(credential.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RateRequest:
    """A request's policy and the counter it draws on, known (or refused with 400) before anything is sent."""

    policy: RatePolicy
    key: str


def rate_request(value: str, headers: Mapping[str, str], body: bytes) -> RateRequest:
    policy = parse_policy(value)
    return RateRequest(policy, f"rl:{tenant_of(headers)}:{policy.unit}:{segment_of(policy, headers, body)}")


@dataclass(frozen=True, slots=True)
class Window:
    allowed: bool
    used: float  # units counted in the window, including this request's if it was admitted
    oldest: float | None  # when the oldest counted unit was spent (time.time())


class RateCounter(Protocol):
    async def take(self, key: str, window_s: float, limit: float, units: float, now: float) -> Window:
        """If the window holds less than ``limit``, count ``units`` more; either way report the window."""

    async def add(self, key: str, window_s: float, units: float, now: float) -> None:
        """Count ``units`` spent at ``now`` (the cost of an admitted request, known after its answer)."""


class LocalRateCounter:
    """Sliding-window counters in this process: a deque of (time, units) and a running total per key."""

    def __init__(self) -> None:
        self._events: dict[str, deque[tuple[float, float]]] = {}
        self._totals: dict[str, float] = {}
        self._windows: dict[str, float] = {}
        self._ops = 0

    def _window(self, key: str, window_s: float, now: float) -> deque[tuple[float, float]]:
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
            self._totals[key] = 0.0
        self._windows[key] = window_s
        cutoff = now - window_s
        while events and events[0][0] <= cutoff:
            self._totals[key] -= events.popleft()[1]
        if not events:
            self._totals[key] = 0.0  # no float drift survives an empty window
        return events

    def _sweep(self, now: float) -> None:
        """Forget keys whose newest unit has left their window, so idle tenants do not hold memory."""
        stale = [k for k, ev in self._events.items() if not ev or ev[-1][0] <= now - self._windows.get(k, 0.0)]
        for key in stale:
            del self._events[key], self._totals[key]
            self._windows.pop(key, None)

    async def take(self, key: str, window_s: float, limit: float, units: float, now: float) -> Window:
        events = self._window(key, window_s, now)
        used = self._totals[key]
        if used >= limit:
            return Window(False, used, events[0][0] if events else None)
        if units:
            events.append((now, units))
            self._totals[key] = used = used + units
        return Window(True, used, events[0][0] if events else None)

    async def add(self, key: str, window_s: float, units: float, now: float) -> None:
        events = self._window(key, window_s, now)
        events.append((now, units))
        self._totals[key] += units


@dataclass(frozen=True, slots=True)
class RateGrant:
    """An admitted request: the headers its answer carries, and where its cost is counted (``u=cents``)."""

    policy: RatePolicy
    key: str
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, counter: RateCounter | None = None) -> None:
        self.counter: RateCounter = counter or LocalRateCounter()
        self._pending: set[asyncio.Task[None]] = set()

    async def admit(self, rate: RateRequest) -> RateGrant:
        """Count this request against its policy; raises RateLimited (429, with the headers) when over quota."""
        policy, key = rate.policy, rate.key
        now = time.time()
        units = 1.0 if policy.unit == "request" else 0.0
        window = await self.counter.take(key, policy.window_s, policy.quota, units, now)
        reset = policy.window_s if window.oldest is None else max(1, math.ceil(window.oldest + policy.window_s - now))
        out = {
            "Helicone-RateLimit-Limit": str(policy.quota),
            "Helicone-RateLimit-Remaining": str(max(0, math.floor(policy.quota - window.used))),
            "Helicone-RateLimit-Policy": policy.header,
            "Helicone-RateLimit-Reset": str(reset),
        }
        if not window.allowed:
            raise RateLimited(
                f"Rate limit reached under policy {policy.header} ({RATE_LIMIT_POLICY}). "
                f"Please wait {reset}s before making more requests.",
                code="rate_limit_exceeded",
                headers={**out, "Retry-After": str(reset)},
            )
        return RateGrant(policy, key, out)

    def charge(self, grant: RateGrant, exchange: Exchange, prices: PriceTable) -> None:
        """For ``u=cents``: count what the answer cost, after it was sent (off the response path)."""
        if grant.policy.unit != "cents":
            return
        task = asyncio.get_running_loop().create_task(self._charge(grant, exchange, prices))
        self._pending.add(task)  # keep a reference until it ran: the loop only holds weak ones
        task.add_done_callback(self._pending.discard)

    async def _charge(self, grant: RateGrant, exchange: Exchange, prices: PriceTable) -> None:
        try:
            cost = exchange_cost(exchange, prices)
            if cost:
                await self.counter.add(grant.key, grant.policy.window_s, cost * 100.0, time.time())
        except Exception:
            log.exception("could not count the cost of request %s against its rate limit", exchange.request_id)
