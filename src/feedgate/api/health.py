"""Liveness and readiness: is the process up, and can it log (store reachable, schema current)."""

from __future__ import annotations

from aiohttp import web

from feedgate.appkeys import INFLIGHT, STORE, WRITER
from feedgate.store.migrations import MIGRATIONS


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    writer = request.app[WRITER]
    body: dict[str, object] = {
        "queue": {"queued": writer.queue.qsize(), "capacity": writer.queue.maxsize},
        "log": writer.stats.as_dict(),
        "inflight": len(request.app[INFLIGHT]),
    }
    try:
        await store.ping()
        applied = set(await store.applied_migrations())
    except Exception as exc:
        body.update(status="unavailable", error=f"store unreachable: {type(exc).__name__}: {exc}")
        return web.json_response(body, status=503)
    missing = [step.name for step in MIGRATIONS if step.name not in applied]
    if missing:
        body.update(status="unavailable", error=f"migrations not applied: {', '.join(missing)}")
        return web.json_response(body, status=503)
    body["status"] = "ready"
    return web.json_response(body)
