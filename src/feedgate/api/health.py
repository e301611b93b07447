"""Liveness and readiness: is the process up, and can it log (store reachable, schema current, writes taken).

``/readyz`` answers within ``server.readyz_timeout_s`` whatever the store does, and says 503 with the real
cause while the store cannot be read or the log writer cannot write (a full disk, a database that refuses
writes): a load balancer then stops sending traffic whose log rows would only wait in memory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from feedgate.appkeys import INFLIGHT, RUNS, SETTINGS, STORE, STORE_CHECK, SUPERVISOR, WRITER
from feedgate.store.migrations import MIGRATIONS
from feedgate.store.protocol import Store

if TYPE_CHECKING:
    from feedgate.proxy.features.supervisor_state import SupervisorState


class StoreCheck:
    """The store's answer to a trivial query (and its applied migrations), asked at most once at a time.

    asyncpg cannot give up on a query to a server that went silent quickly: cancelling it waits for a cancel
    request, which needs a new connection to that same server. So a check that does not answer in time is
    left to finish in the background, /readyz answers 503 at once, and the next /readyz waits on the same
    check instead of starting another.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[set[str]] | None = None
        self._started = 0.0

    async def applied_migrations(self, store: Store, timeout_s: float) -> set[str]:
        """Raises ``TimeoutError`` when the store has not answered within ``timeout_s``, or its own error."""
        if self._task is None:
            self._task = asyncio.create_task(self._ask(store), name="feedgate-store-check")
            self._task.add_done_callback(_retrieve)
            self._started = asyncio.get_running_loop().time()
        task = self._task
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            waited = asyncio.get_running_loop().time() - self._started
            raise TimeoutError(f"no answer for {waited:.1f}s")
        self._task = None
        return task.result()

    async def _ask(self, store: Store) -> set[str]:
        await store.ping()
        return set(await store.applied_migrations())

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


def _retrieve(task: asyncio.Task[set[str]]) -> None:
    if not task.cancelled():
        task.exception()  # read, so a check nobody waited for is not reported as unretrieved


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def snapshot(app: web.Application) -> dict[str, Any]:
    """This process's log queue, writer counts and calls in flight: what ``/readyz`` reports of it."""
    writer = app[WRITER]
    return {
        "queue": {
            "queued": writer.queue.qsize(),
            "capacity": writer.queue.maxsize,
            "queued_bytes": writer.queued_bytes,
            "capacity_bytes": writer.queue_max_bytes,
            "spooled": writer.spool is not None,
        },
        "log": writer.stats.as_dict(),
        "inflight": len(app[INFLIGHT]),
        "unclean_stops": [
            {key: run[key] for key in ("run_id", "host", "pid", "started_utc", "seen_utc")} for run in app[RUNS].unclean
        ],
    }


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    writer = request.app[WRITER]
    body: dict[str, object] = snapshot(request.app)
    failing_workers: list[int] = []
    link = request.app.get(SUPERVISOR)
    if link is not None:
        failing_workers = await _whole_instance(link, body)
    timeout_s = request.app[SETTINGS].server.readyz_timeout_s
    try:
        applied = await request.app[STORE_CHECK].applied_migrations(store, timeout_s)
    except TimeoutError as exc:
        body.update(status="unavailable", error=f"store unreachable: {exc}")
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
    if failing_workers:
        body.update(status="unavailable", error=f"log writer cannot write in workers {failing_workers}")
        return web.json_response(body, status=503)
    body["status"] = "ready"
    return web.json_response(body)


_SUMMED_QUEUE = ("queued", "capacity", "queued_bytes", "capacity_bytes")


async def _whole_instance(link: SupervisorState, body: dict[str, Any]) -> list[int]:
    """A worker of ``--workers N`` speaks for all of them: counts summed over every worker's last snapshot.

    Adds ``workers`` (how many are wanted and up, each one's own figures) to ``body``; returns the workers
    whose log writer cannot write. If the supervisor does not answer, ``body`` stays this worker's own and
    ``workers.error`` says why.
    """
    try:
        instance = await link.instance()
    except Exception as exc:
        body["workers"] = {"error": f"supervisor unreachable: {exc}"}
        return []
    snapshots = [worker["snapshot"] for worker in instance["workers"] if worker["snapshot"] is not None]
    if snapshots:
        queue = cast(dict[str, Any], body["queue"])
        for name in _SUMMED_QUEUE:
            queue[name] = sum(s["queue"][name] for s in snapshots)
        log = cast(dict[str, Any], body["log"])
        for name, value in log.items():
            if isinstance(value, int) and not isinstance(value, bool):
                log[name] = sum(s["log"].get(name) or 0 for s in snapshots)
        body["inflight"] = sum(s["inflight"] for s in snapshots)
        found = {run["run_id"]: run for s in snapshots for run in s.get("unclean_stops", [])}
        mine = cast(list[dict[str, Any]], body["unclean_stops"])
        body["unclean_stops"] = list({**found, **{run["run_id"]: run for run in mine}}.values())
    body["workers"] = {
        "wanted": instance["wanted"],
        "up": instance["up"],
        "each": [
            {
                "index": worker["index"],
                "pid": worker["pid"],
                "inflight": worker["snapshot"]["inflight"] if worker["snapshot"] else None,
                "written": worker["snapshot"]["log"]["written"] if worker["snapshot"] else None,
                "failing": bool(worker["snapshot"] and worker["snapshot"]["log"].get("failing_since")),
            }
            for worker in instance["workers"]
        ],
    }
    return [
        worker["index"]
        for worker in instance["workers"]
        if worker["snapshot"] and worker["snapshot"]["log"].get("failing_since")
    ]
