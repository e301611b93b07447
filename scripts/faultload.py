"""The clients of scripts/faults.py (load, probes), what it reads back from a store, and its figures."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

MODEL = "gpt-4o-mini"
AUTH = {"Authorization": "Bearer sk-faults"}
ANSWERED_OK = frozenset({201, 202})


# ---------------------------------------------------------------------------------------------------- load
@dataclass
class Tally:
    """What clients saw. ``answered``: proxied calls whose whole answer arrived (their IDs, in order)."""

    answered: list[str] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    acked: Counter[str] = field(default_factory=Counter)  # ratings answered 201 or 202, per request ID
    statuses: Counter[str] = field(default_factory=Counter)  # "call 200", "rating 503", ...
    failures: Counter[str] = field(default_factory=Counter)  # no answer: the exception's name
    failed_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for key, count in self.statuses.items() if key.split()[-1].startswith("5"))


async def call(
    http: aiohttp.ClientSession, url: str, n: int, tally: Tally, *, stream: bool, headers: dict[str, str] | None = None
) -> str | None:
    """One proxied chat call, read to its end; its request ID when it was answered 200 in full."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"call {n}"}], "stream": stream}
    started = time.monotonic()
    try:
        async with http.post(f"{url}/v1/chat/completions", json=body, headers={**AUTH, **(headers or {})}) as r:
            data = await r.read()
            tally.statuses[f"call {r.status}"] += 1
            if r.status != 200 or (stream and not data.endswith(b"data: [DONE]\n\n")):
                return None
            tally.latencies.append(time.monotonic() - started)
            tally.answered.append(r.headers["Helicone-Id"])
            tally.answered_at.append(time.monotonic())
            return r.headers["Helicone-Id"]
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.failures[type(exc).__name__] += 1
        tally.failed_at.append(time.monotonic())
        await asyncio.sleep(0.01)  # a gateway that is gone refuses at once: do not spin
        return None


async def rate(http: aiohttp.ClientSession, url: str, request_id: str, tally: Tally, rating: bool = True) -> int:
    try:
        async with http.post(f"{url}/v1/request/{request_id}/feedback", json={"rating": rating}) as r:
            await r.read()
            tally.statuses[f"rating {r.status}"] += 1
            if r.status in ANSWERED_OK:
                tally.acked[request_id] += 1
            return r.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.failures[type(exc).__name__] += 1
        return 0


Step = Callable[[aiohttp.ClientSession, int, Tally], Awaitable[None]]


class Load:
    """``workers`` clients, each running ``step`` in a loop until ``stop()``; the default step is one call
    (JSON or SSE in turn) followed, every ``rate_every``-th time, by a rating of it."""

    def __init__(
        self,
        url: str,
        workers: int,
        *,
        rate_every: int = 0,
        headers: dict[str, str] | None = None,
        step: Step | None = None,
    ) -> None:
        self.url, self.workers, self.rate_every, self.headers = url, workers, rate_every, headers
        self.step = step or self._call_and_rate
        self.tally = Tally()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Load:
        timeout = aiohttp.ClientTimeout(total=120)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
        self._tasks = [asyncio.create_task(self._worker(w)) for w in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> Tally:
        self._stopping.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        return self.tally

    async def until(self, answered: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.tally.answered) < answered and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _worker(self, w: int) -> None:
        assert self._http is not None
        n = w
        while not self._stopping.is_set():
            await self.step(self._http, n, self.tally)
            n += self.workers

    async def _call_and_rate(self, http: aiohttp.ClientSession, n: int, tally: Tally) -> None:
        request_id = await call(http, self.url, n, tally, stream=n % 2 == 0, headers=self.headers)
        if request_id is not None and self.rate_every and n % self.rate_every == 0 and not self._stopping.is_set():
            await rate(http, self.url, request_id, tally, rating=n % 3 != 0)


async def readyz(url: str) -> tuple[int, dict[str, Any], float]:
    """/readyz's status, body and answer time (status 0 when it did not answer in 30 s)."""
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.get(f"{url}/readyz") as answer:
                return answer.status, await answer.json(), time.monotonic() - started
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 0, {"error": type(exc).__name__}, time.monotonic() - started


async def timed_rating(url: str, request_id: str) -> tuple[int, float, str]:
    """One rating on its own connection: status, seconds, and the error it gave (if any)."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.post(f"{url}/v1/request/{request_id}/feedback", json={"rating": False}) as r:
            body = await r.json(content_type=None)
            return r.status, time.monotonic() - started, str(body.get("error") or "")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# ------------------------------------------------------------------------------------------------- SQLite
def sqlite_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def stored_counts(db: Path) -> Counter[str]:
    """Rows per request ID in a SQLite store (read off the event loop)."""
    rows = await asyncio.to_thread(sqlite_rows, db, "SELECT request_id, COUNT(*) FROM requests GROUP BY request_id")
    return Counter({request_id: count for request_id, count in rows})


async def ratings_stored(db: Path) -> Counter[str]:
    """Explicit rating events stored per request ID."""
    sql = "SELECT target_id, COUNT(*) FROM feedback_events WHERE target_type = 'request' AND kind = 'explicit' "
    rows = await asyncio.to_thread(sqlite_rows, db, sql + "GROUP BY target_id")
    return Counter({request_id: count for request_id, count in rows})


async def wait_stored(db: Path, ids: list[str], timeout: float) -> Counter[str]:
    """Poll until every ID has a row (or ``timeout``); the counts found last."""
    deadline = time.monotonic() + timeout
    while True:
        counts = await stored_counts(db)
        if all(request_id in counts for request_id in ids) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.25)


# ------------------------------------------------------------------------------------------------ figures
@dataclass
class Figure:
    name: str
    value: str
    ok: bool | None  # None: a figure reported, not a guarantee
    guarantee: str
    detail: bool = False  # printed as it comes, left out of the summary table


@dataclass
class Report:
    """One scenario's figures, printed as they come."""

    scenario: str
    figures: list[Figure] = field(default_factory=list)

    def info(self, name: str, value: object) -> None:
        self._add(Figure(name, str(value), None, ""))

    def detail(self, name: str, value: object) -> None:
        self._add(Figure(name, str(value), None, "", detail=True))

    def check(self, name: str, value: object, ok: bool, guarantee: str) -> None:
        self._add(Figure(name, str(value), ok, guarantee))

    def _add(self, figure: Figure) -> None:
        self.figures.append(figure)
        mark = "" if figure.ok is None else "  [held]" if figure.ok else f"  [BROKEN: {figure.guarantee}]"
        print(f"  {figure.name}: {figure.value}{mark}", flush=True)

    @property
    def broken(self) -> list[Figure]:
        return [figure for figure in self.figures if figure.ok is False]


def markdown(reports: list[Report]) -> str:
    lines = ["| scenario | figure | measured | guarantee |", "|---|---|---|---|"]
    for report in reports:
        for figure in (figure for figure in report.figures if not figure.detail):
            held = "" if figure.ok is None else ("held: " if figure.ok else "**BROKEN**: ") + figure.guarantee
            lines.append(f"| {report.scenario} | {figure.name} | {figure.value} | {held} |")
    return "\n".join(lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
