"""Liveness and readiness: is the process up, and can it log (store reachable, schema current, writes taken).

``/readyz`` answers within ``server.readyz_timeout_s`` whatever the store does, and says 503 with the real
cause while the store cannot be read or the log writer cannot write (a full disk, a database that refuses
writes): a load balancer then stops sending traffic whose log rows would only wait in memory.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from feedgate.appkeys import INFLIGHT, RUNS, SETTINGS, STORE, WRITER
from feedgate.store.migrations import MIGRATIONS


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    writer = request.app[WRITER]
    runs = request.app[RUNS]
    body: dict[str, object] = {
        "queue": {
            "queued": writer.queue.qsize(),
            "capacity": writer.queue.maxsize,
            "queued_bytes": writer.queued_bytes,
            "capacity_bytes": writer.queue_max_bytes,
            "spooled": writer.spool is not None,
        },
        "log": writer.stats.as_dict(),
        "inflight": len(request.app[INFLIGHT]),
        "unclean_stops": [
            {key: run[key] for key in ("run_id", "host", "pid", "started_utc", "seen_utc")} for run in runs.unclean
        ],
    }
    timeout_s = request.app[SETTINGS].server.readyz_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            await store.ping()
            applied = set(await store.applied_migrations())
    except TimeoutError:
        body.update(status="unavailable", error=f"store unreachable: no answer within {timeout_s:g}s")
        return web.json_response(body, status=503)
    except Exception as exc:
        body.update(status="unavailable", error=f"store unreachable: {type(exc).__name__}: {exc}")
        return web.json_response(body, status=503)
    missing = [step.name for step in MIGRATIONS if step.name not in applied]
    if missing:
        body.update(status="unavailable", error=f"migrations not applied: {', '.join(missing)}")
        return web.json_response(body, status=503)
    if writer.failing:
        body.update(status="unavailable", error=f"log writer cannot write: {writer.stats.last_error}")
        return web.json_response(body, status=503)
    body["status"] = "ready"
    return web.json_response(body)
