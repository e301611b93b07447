"""The scenarios of scripts/faults.py where the store fails: PostgreSQL cut or blackholed (``pgcut``), and
SQLite on a full disk (``diskfull``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from faultkit import Gateway, Relay
from faultload import (
    Load,
    Report,
    Tally,
    call,
    ms,
    readyz,
    sqlite_rows,
    timed_rating,
    wait_stored,
)

if TYPE_CHECKING:
    from faults import Ctx

READYZ_S = 2.0  # server.readyz_timeout_s, the default the gateways here run with
STORE_S = 2.0  # feedback.store_timeout_s, likewise
SLACK_S = 0.5  # what an HTTP round trip on a busy machine may add to either
BALLAST = 64 * 1024
MOUNTS: list[Path] = []


def within(seconds: float, limit: float) -> bool:
    return seconds <= limit + SLACK_S


# ------------------------------------------------------------------------------------------------- pgcut
def via(url: str, port: int) -> str:
    """The same database URL, reached through 127.0.0.1:port."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"))


async def pg_ids(url: str, schema: str) -> set[str]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return {row[0] for row in await conn.fetch(f'SELECT request_id FROM "{schema}".requests')}
    finally:
        await conn.close()


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def outage(ctx: Ctx, report: Report, gateway_url: str, relay: Relay, load: Load, schema: str, kind: str) -> None:
    """One outage of ``--cut-seconds`` under load: answers, /readyz, a rating, then the rows landing."""
    tally, seconds = load.tally, ctx.args.cut_seconds
    rated = tally.answered[-1]  # an ID logged before the outage
    before_5xx = tally.server_errors
    began = time.monotonic()
    if kind == "cut":
        await relay.cut()
    else:
        relay.blackhole()

    async def rating_later() -> tuple[int, float, str]:
        await asyncio.sleep(min(3.0, seconds / 2))
        return await timed_rating(gateway_url, rated)

    async def probe() -> tuple[int, float, str, float]:
        started = time.monotonic()
        status, body, took = await readyz(gateway_url)
        return status, took, str(body.get("error", "")), started + took

    rating = asyncio.create_task(rating_later())
    probing: list[asyncio.Task[tuple[int, float, str, float]]] = []
    while time.monotonic() - began < seconds:  # one probe a second, each on its own: a hung one stops none
        probing.append(asyncio.create_task(probe()))
        await asyncio.sleep(1.0)
    await relay.restore()
    ended = time.monotonic()
    status, took, error = await rating
    probes = await asyncio.gather(*probing)

    answered = sum(1 for at in tally.answered_at if began <= at <= ended)
    failed = sum(1 for at in tally.failed_at if began <= at <= ended) + tally.server_errors - before_5xx
    report.check(f"{kind}: calls answered / failed during it", f"{answered} / {failed}", failed == 0,
                 "the store's outage costs no answer")  # fmt: skip
    statuses = Counter(str(code) if at <= ended else f"{code} after it ended" for code, _, _, at in probes)
    slowest = max(took for _, took, _, _ in probes)
    shown = ", ".join(f"{code} ×{count}" for code, count in statuses.items())
    # A probe sent shortly before the network came back may answer after it, 503 or already 200: what must
    # hold is that each answered within its timeout, and none said ready while the store was away.
    ready_during = any(code == 200 and at <= ended for code, _, _, at in probes)
    report.check(f"{kind}: /readyz during it (slowest)", f"{shown} (slowest {ms(slowest)})",
                 not ready_during and within(slowest, READYZ_S),
                 f"/readyz answers 503 within server.readyz_timeout_s ({READYZ_S:g} s)")  # fmt: skip
    report.detail(f"{kind}: /readyz said", next((e for code, _, e, _ in probes if code == 503), "-")[:90])
    report.check(f"{kind}: a rating during it", f"{status} in {ms(took)}", status == 503 and within(took, STORE_S),
                 f"503 within feedback.store_timeout_s ({STORE_S:g} s)")  # fmt: skip
    if status == 503:
        report.detail(f"{kind}: its answer", error[:90])

    due = [request_id for request_id, at in zip(tally.answered, tally.answered_at, strict=True) if at <= ended]
    missing = len(due)
    while time.monotonic() - ended < 60:
        missing = len(set(due) - await pg_ids(ctx.args.postgres_url, schema))
        if not missing:
            break
        await asyncio.sleep(0.5)
    report.check(f"{kind}: rows of calls answered until it ended, landed", f"{len(due) - missing} of {len(due)} "
                 f"in {ms(time.monotonic() - ended)}", missing == 0, "rows wait and land")  # fmt: skip
    while (await readyz(gateway_url))[0] != 200 and time.monotonic() - ended < 60:
        await asyncio.sleep(0.2)
    report.info(f"{kind}: /readyz 200 again after", ms(time.monotonic() - ended))


async def pgcut(ctx: Ctx, report: Report) -> None:
    base = ctx.args.postgres_url
    try:
        await (await asyncpg.connect(base, timeout=5)).close()
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"PostgreSQL is not reachable at {base}: {exc}") from None
    schema = f"faults_{secrets.token_hex(4)}"
    ctx.stack.push_async_callback(drop_schema, base, schema)
    parts = urlsplit(base)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    ctx.stack.push_async_callback(relay.cut)
    url = via(base, relay.port)
    gateway = await ctx.gateway(FEEDGATE_DATABASE_URL=f"{url}{'&' if '?' in url else '?'}schema={schema}")
    ctx.stack.push_async_callback(relay.restore)  # before the gateway stops, so it can write what it holds
    async with Load(gateway.url, ctx.args.workers // 2) as load:
        await asyncio.sleep(2)
        await outage(ctx, report, gateway.url, relay, load, schema, "cut")
        await asyncio.sleep(1)
        await outage(ctx, report, gateway.url, relay, load, schema, "blackhole")
        tally = await load.stop()
    report.detail("calls answered in all", f"{len(tally.answered)}, failures: {dict(tally.failures) or 0}")
    deadline = time.monotonic() + 30
    while (missing := len(set(tally.answered) - await pg_ids(base, schema))) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    report.check("rows lost", missing, missing == 0, "every answered call is logged")


# ---------------------------------------------------------------------------------------------- diskfull
def unmount_leftovers() -> None:
    for mount in MOUNTS:
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
    MOUNTS.clear()


def fill(disk: Path) -> list[Path]:
    """Ballast files until the disk has no room left; returns them, so space can be given back."""
    files: list[Path] = []
    chunk = os.urandom(BALLAST)
    with contextlib.suppress(OSError):
        while True:
            path = disk / f"ballast-{len(files)}"
            files.append(path)
            with path.open("wb") as out:
                out.write(chunk)
    return files


async def written(url: str) -> int:
    return int((await readyz(url))[1].get("log", {}).get("written", -1))


async def landed_after_freeing(url: str, ballast: list[Path]) -> int:
    """Free one ballast file; how many rows land before the disk is full again (quiet for 6 s)."""
    before = last = await written(url)
    ballast.pop().unlink()
    quiet_since = started = time.monotonic()
    while time.monotonic() - quiet_since < 6 and time.monotonic() - started < 40:
        await asyncio.sleep(0.25)
        now = await written(url)
        if now != last:
            last, quiet_since = now, time.monotonic()
    return last - before


async def calls(url: str, count: int, tally: Tally, workers: int = 8) -> None:
    async with aiohttp.ClientSession() as http:
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:
                await call(http, url, n, tally, stream=n % 2 == 0)

        await asyncio.gather(*(worker() for _ in range(workers)))


async def until_failing(url: str, timeout: float = 20) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = await readyz(url)
        if status == 503 or time.monotonic() > deadline:
            return status, str(body.get("error", ""))
        await asyncio.sleep(0.2)


async def diskfull(ctx: Ctx, report: Report) -> None:
    disk = ctx.workdir / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs (needs root): {mounted.stderr.decode().strip()}")
    MOUNTS.append(disk)
    ctx.stack.callback(unmount_leftovers)
    db = disk / "feedgate.db"
    gateway = await ctx.gateway(FEEDGATE_DATABASE_URL=f"sqlite:///{db}")
    warm = Tally()
    await calls(gateway.url, 20, warm)
    await wait_stored(db, warm.answered, timeout=10)
    ballast = fill(disk)
    report.detail("tmpfs", f"4 MiB, filled with {len(ballast) - 1} ballast files of 64 KiB")

    full = Tally()
    await calls(gateway.url, ctx.args.disk_calls, full)
    report.check("calls answered while full", f"{len(full.answered)} of {ctx.args.disk_calls}",
                 len(full.answered) == ctx.args.disk_calls, "a full disk costs no answer")  # fmt: skip
    status, error = await until_failing(gateway.url)
    report.check("/readyz", f"{status}: {error[:80]}", status == 503 and "database or disk is full" in error,
                 "503 naming the cause")  # fmt: skip
    status, took, message = await timed_rating(gateway.url, warm.answered[0])
    report.check("a rating", f"{status} in {ms(took)}", status == 503 and within(took, STORE_S),
                 f"503 within feedback.store_timeout_s ({STORE_S:g} s)")  # fmt: skip
    report.detail("its answer", message[:90])
    landed = [await landed_after_freeing(gateway.url, ballast) for _ in range(3)]
    report.check("rows landing per 64 KiB freed, 3 times", ", ".join(map(str, landed)), any(landed),
                 "rows land again once 192 KiB is freed")  # fmt: skip
    freed = time.monotonic()
    for path in ballast:
        path.unlink(missing_ok=True)
    stored = await wait_stored(db, full.answered, timeout=60)
    missing = sum(1 for request_id in full.answered if request_id not in stored)
    report.check("after freeing the rest: rows lost", f"{missing} (all in {ms(time.monotonic() - freed)})",
                 missing == 0, "rows wait and land")  # fmt: skip
    await sigterm_while_full(ctx, report, gateway, disk, db)


async def sigterm_while_full(ctx: Ctx, report: Report, gateway: Gateway, disk: Path, db: Path) -> None:
    fill(disk)
    held = Tally()
    await calls(gateway.url, ctx.args.disk_calls, held)
    await until_failing(gateway.url)
    mark = len(gateway.log())
    signalled = time.monotonic()
    gateway.signal(signal.SIGTERM)
    code = await gateway.wait(180)
    took = time.monotonic() - signalled
    said = gateway.log()[mark:]
    stored = {row[0] for row in await asyncio.to_thread(sqlite_rows, db, "SELECT request_id FROM requests")}
    missing = sum(1 for request_id in held.answered if request_id not in stored)
    report.info("SIGTERM while full: exit status, time", f"{code}, {ms(took)}")
    lines = [line for line in said.splitlines() if re.search(r"could not be written|records lost|\d+ lost", line)]
    for line in lines:
        report.detail("SIGTERM while full: said", line.split(": ", 1)[-1][:110])
    summary = [int(n) for line in lines for n in re.findall(r"(\d+) lost \(store errors", line)]
    report.check("SIGTERM while full: rows not written / said lost", f"{missing} / {sum(summary)}",
                 summary == [missing], "every record not written is counted")  # fmt: skip
    report.check("SIGTERM while full: lines saying so", len(lines), len(lines) == 1,
                 "one line says what was not written")  # fmt: skip
    strays = said.count("Traceback") + said.count("exception was never retrieved")
    report.check("SIGTERM while full: tracebacks", strays, strays == 0, "no stray tracebacks")
