"""Load and faults against real ``feedgate serve`` processes: what is lost, what is said, what holds.

    python scripts/faults.py                       # every scenario, a few minutes
    python scripts/faults.py --only kill9 --only sigterm --load-seconds 10

Each scenario starts its own gateway (``python -m feedgate serve``, configured through ``FEEDGATE_*``
variables, access log off) in front of a fake OpenAI-compatible upstream run by this script, drives it with
aiohttp clients, injects one fault, and prints its figures as it goes; a markdown table of all of them
comes last. Scenarios: ``kill9`` (kill -9 under load, restarted on the same SQLite file; then again with
``database.spool``), ``sigterm``, ``pgcut`` (PostgreSQL cut, then blackholed, through a TCP relay),
``diskfull`` (SQLite on a small tmpfs filled with ballast; needs root), ``slowclients``, ``soak``.

A figure marked ``held`` or ``BROKEN`` is a guarantee; the script exits 1 when one is broken (a lost
acknowledged rating, a row lost on SIGTERM or with the spool, a 5xx, a /readyz slower than its timeout...)
and 2 when a scenario could not run. Processes, mounts and schemas it made are removed however it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import faults_clients
import faults_outages
from faultkit import Gateway, Upstream, kill_leftovers
from faultload import (
    AUTH,
    Load,
    Report,
    Tally,
    call,
    markdown,
    ms,
    rate,
    ratings_stored,
    readyz,
    sqlite_rows,
    stored_counts,
    wait_stored,
)

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Ctx:
    """What a scenario gets: the options, a directory of its own, the fake upstream, and a cleanup stack."""

    args: argparse.Namespace
    workdir: Path
    upstream: str
    stack: AsyncExitStack

    async def gateway(self, **env: str) -> Gateway:
        gateway = Gateway({"FEEDGATE_OPENAI_BASE_URL": self.upstream, **env}, self.workdir)
        self.stack.push_async_callback(gateway.stop)
        await gateway.start()
        return gateway


def lost(answered: list[str], stored: dict[str, int]) -> int:
    return sum(1 for request_id in answered if request_id not in stored)


def twice(answered: list[str], stored: dict[str, int]) -> int:
    return sum(1 for request_id in answered if stored.get(request_id, 0) > 1)


async def ratings(report: Report, db: Path, tally: Tally) -> None:
    missing = (tally.acked - await ratings_stored(db)).total()
    report.check(
        "ratings acknowledged (201/202) / not stored",
        f"{tally.acked.total()} / {missing}",
        missing == 0,
        "an acknowledged rating is stored",
    )


# ---------------------------------------------------------------------------------------------- kill -9
async def kill9(ctx: Ctx, report: Report, *, spool: bool) -> None:
    db = ctx.workdir / "kill9.db"
    env = {"FEEDGATE_DATABASE_URL": f"sqlite:///{db}"}
    if spool:
        env["FEEDGATE_DATABASE_SPOOL"] = str(ctx.workdir / "spool")
    gateway = await ctx.gateway(**env)
    async with Load(gateway.url, ctx.args.workers, rate_every=2) as load:
        await asyncio.sleep(ctx.args.load_seconds)
        killed_pid = gateway.pid
        await gateway.kill9()
        tally = await load.stop()
    at_kill = await stored_counts(db)
    answered = tally.answered
    intact = (await asyncio.to_thread(sqlite_rows, db, "PRAGMA integrity_check"))[0][0]
    report.check("SQLite integrity_check after the kill", intact, intact == "ok", "the database survives kill -9")
    report.info("calls answered before the kill", f"{len(answered)} in {ctx.args.load_seconds:g} s")
    report.detail("rows stored for them at the kill", len(answered) - lost(answered, at_kill))

    started = time.monotonic()
    await gateway.start()
    report.detail("restart: ready after", ms(time.monotonic() - started))
    stored = await wait_stored(db, answered, timeout=30 if spool else 1)
    missing = lost(answered, stored)
    if spool:
        report.check("rows lost", missing, missing == 0, "with the spool, kill -9 loses no row")
        spooled = [line for line in gateway.log().splitlines() if "spool:" in line]
        report.detail("restart said", spooled[0].split("spool: ", 1)[1] if spooled else "nothing about the spool")
    else:
        report.info("rows lost (the records in memory)", missing)
    report.check("rows written twice", twice(answered, stored), twice(answered, stored) == 0, "no row is written twice")
    await ratings(report, db, tally)
    said = any("did not stop cleanly" in line and f"pid {killed_pid} " in line for line in gateway.log().splitlines())
    status, body, _ = await readyz(gateway.url)
    listed = status == 200 and killed_pid in [stop["pid"] for stop in body.get("unclean_stops", [])]
    report.check("the restart logged the unclean stop / /readyz unclean_stops lists it",
                 f"{'yes' if said else 'no'} / {'yes' if listed else 'no'}", said and listed,
                 "a crash is said and listed at the next start")  # fmt: skip


# ---------------------------------------------------------------------------------------------- SIGTERM
async def sigterm(ctx: Ctx, report: Report) -> None:
    db = ctx.workdir / "sigterm.db"
    gateway = await ctx.gateway(FEEDGATE_DATABASE_URL=f"sqlite:///{db}")
    delay = {"X-Fake-Delay-Ms": "20"}  # calls in flight when the signal comes
    async with Load(gateway.url, ctx.args.workers, rate_every=2, headers=delay) as load:
        await asyncio.sleep(ctx.args.load_seconds)
        signalled = time.monotonic()
        gateway.signal(signal.SIGTERM)
        code = await gateway.wait(120)
        took = time.monotonic() - signalled
        tally = await load.stop()
    stored = await stored_counts(db)
    answered = tally.answered
    after = sum(1 for at in tally.answered_at if at > signalled)
    report.info("calls answered", f"{len(answered)} ({after} of them after the signal: in flight)")
    missing = lost(answered, stored)
    report.check("rows lost", missing, missing == 0, "SIGTERM loses no row")
    await ratings(report, db, tally)
    report.check("exit status", code, code == 0, "SIGTERM exits 0")
    report.info("shutdown took", ms(took))
    log = gateway.log()
    report.check("tracebacks in its log", log.count("Traceback"), "Traceback" not in log, "a clean stop is quiet")
    report.check("5xx answers", tally.server_errors, tally.server_errors == 0, "no 5xx")


# ------------------------------------------------------------------------------------------------- soak
BAD_INPUTS: list[tuple[str, str, str, bytes, dict[str, str]]] = [
    ("feedback with a misspelt field", "POST", "/v1/request/{id}/feedback", b'{"ratin": true}', {}),
    ("feedback that is not JSON", "POST", "/v1/request/{id}/feedback", b'{"rating": tr', {}),
    ("a request ID with a space", "POST", "/v1/request/bad%20id/feedback", b'{"rating": true}', {}),
    ("an unknown request", "GET", "/v1/request/00000000-0000-7000-8000-000000000000", b"", {}),
    ("a bad Helicone-Request-Id", "POST", "/v1/chat/completions", b'{"model": "gpt-4o-mini", "messages": []}',
     {"Helicone-Request-Id": "not valid!", **AUTH}),
]  # fmt: skip


def soak_step(url: str) -> Callable[[aiohttp.ClientSession, int, Tally], Awaitable[None]]:
    """Mixed traffic: 4 in 10 JSON calls, 3 streams, 2 ratings of earlier calls, 1 input answered 4xx."""

    async def step(http: aiohttp.ClientSession, n: int, tally: Tally) -> None:
        kind = n % 10
        if kind < 7:
            await call(http, url, n, tally, stream=kind >= 4)
        elif kind < 9:
            if tally.answered:
                await rate(http, url, random.choice(tally.answered), tally, rating=kind == 7)
        else:
            name, method, path, body, headers = BAD_INPUTS[(n // 10) % len(BAD_INPUTS)]
            target = tally.answered[-1] if tally.answered else "x"
            try:
                async with http.request(method, url + path.format(id=target), data=body, headers=headers) as r:
                    await r.read()
                    tally.statuses[f"bad input {r.status}"] += 1
                    if not 400 <= r.status < 500:
                        tally.failures[f"{name} answered {r.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                tally.failures[type(exc).__name__] += 1

    return step


async def soak(ctx: Ctx, report: Report) -> None:
    db = ctx.workdir / "soak.db"
    gateway = await ctx.gateway(FEEDGATE_DATABASE_URL=f"sqlite:///{db}")
    seconds = ctx.args.soak_seconds
    rss = [gateway.rss_mib()]
    async with Load(gateway.url, ctx.args.workers, step=soak_step(gateway.url)) as load:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            rss.append(gateway.rss_mib())
        tally = await load.stop()
    answered = tally.answered
    requests = sum(tally.statuses.values())
    report.info("requests answered", f"{requests} in {seconds:g} s ({requests / seconds:.0f}/s)")
    report.detail("by kind", ", ".join(f"{key} ×{count}" for key, count in sorted(tally.statuses.items())))
    stored = await wait_stored(db, answered, timeout=30)
    missing = lost(answered, stored)
    report.check("proxied calls answered / rows", f"{len(answered)} / {len(answered) - missing}", missing == 0,
                 "every answered call is logged")  # fmt: skip
    await ratings(report, db, tally)
    report.check("5xx answers", tally.server_errors, tally.server_errors == 0, "no 5xx")
    errors = ", ".join(f"{key} ×{count}" for key, count in tally.failures.items()) or "0"
    report.check("other errors", errors, not tally.failures, "every request answered as expected")
    report.info("gateway RSS start / max / end", f"{rss[0]:.0f} / {max(rss):.0f} / {rss[-1]:.0f} MiB")
    status, body, _ = await readyz(gateway.url)
    log = body.get("log", {})
    counters = {key: log.get(key) for key in ("dropped_queue_full", "dropped_store_error", "dropped_build_error")}
    report.check("/readyz after", f"{status} {counters}", status == 200 and not any(counters.values()),
                 "nothing dropped")  # fmt: skip


# ------------------------------------------------------------------------------------------------- main
Scenario = Callable[[Ctx, Report], Awaitable[None]]


def scenarios() -> dict[str, tuple[str, Scenario]]:
    async def kill9_plain(ctx: Ctx, report: Report) -> None:
        await kill9(ctx, report, spool=False)

    async def kill9_spool(ctx: Ctx, report: Report) -> None:
        await kill9(ctx, report, spool=True)

    return {
        "kill9": ("kill9", kill9_plain),
        "kill9-spool": ("kill9", kill9_spool),
        "sigterm": ("sigterm", sigterm),
        "pgcut": ("pgcut", faults_outages.pgcut),
        "diskfull": ("diskfull", faults_outages.diskfull),
        "slowclients": ("slowclients", faults_clients.slowclients),
        "soak": ("soak", soak),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = sorted({group for group, _ in scenarios().values()})
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=names, help="run this scenario (repeatable); default all")
    parser.add_argument("--workers", type=int, default=32, help="concurrent clients of the load (default 32)")
    parser.add_argument("--load-seconds", type=float, default=5, help="kill9, sigterm: load before the fault")
    parser.add_argument("--cut-seconds", type=float, default=10, help="pgcut: how long each outage lasts")
    parser.add_argument("--disk-calls", type=int, default=200, help="diskfull: calls made while the disk is full")
    parser.add_argument("--slow-clients", type=int, default=200, help="slowclients: how many (half stall)")
    parser.add_argument("--slow-seconds", type=float, default=10, help="slowclients: how long each answer streams")
    parser.add_argument("--big-stalls", type=int, default=10, help="slowclients: clients stalled on 8 MiB answers")
    parser.add_argument("--soak-seconds", type=float, default=60, help="soak: duration (default 60)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FEEDGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help=f"pgcut: the PostgreSQL server (a throw-away schema is made and dropped); default {DEFAULT_POSTGRES}",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (databases, gateway logs)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, root: Path) -> tuple[list[Report], list[str]]:
    upstream = Upstream()
    reports: list[Report] = []
    failed: list[str] = []
    await upstream.start()
    try:
        for name, (group, scenario) in scenarios().items():
            if args.only and group not in args.only:
                continue
            report = Report(name)
            reports.append(report)
            print(f"\n== {name}", flush=True)
            workdir = root / name
            workdir.mkdir()
            started = time.monotonic()
            try:
                async with AsyncExitStack() as stack:
                    await scenario(Ctx(args, workdir, upstream.url, stack), report)
            except Exception as exc:
                traceback.print_exc()
                failed.append(name)
                report.check("scenario", f"stopped: {type(exc).__name__}: {exc}", False, "the scenario runs")
            print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        await upstream.close()
    return reports, failed


def _interrupted(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # cleanup runs on SIGTERM as on Ctrl+C
    root = Path(tempfile.mkdtemp(prefix="feedgate-faults-"))
    print(f"feedgate faults, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; working in {root}")
    try:
        reports, failed = asyncio.run(run(args, root))
    except KeyboardInterrupt:
        print("\ninterrupted: stopped what it had started", file=sys.stderr)
        return 130
    finally:
        kill_leftovers()
        faults_outages.unmount_leftovers()
        if args.keep:
            print(f"kept {root}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(root)
    print("\n" + markdown(reports))
    broken = [f"{report.scenario}: {figure.name}" for report in reports for figure in report.broken]
    if failed:
        print(f"\nscenarios that could not run: {', '.join(failed)}")
    if broken:
        print(f"\nguarantees broken: {'; '.join(broken)}")
    return 2 if failed else 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
