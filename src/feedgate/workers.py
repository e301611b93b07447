"""``feedgate serve --workers N``: one supervisor process and N worker processes serving one port.

The supervisor binds the listening socket once and each worker inherits it (``subprocess`` with
``pass_fds``, re-running ``python -m feedgate serve`` with the hidden ``--worker-of`` flags) and serves it
with aiohttp's ``SockSite``. Why one shared socket rather than each worker binding with SO_REUSEPORT:
connections waiting to be accepted sit in the one socket's queue, so a worker that crashes loses only the
connections it had already accepted, where with SO_REUSEPORT the kernel has already assigned the crashed
worker its share of the queue and resets them; a port taken by another program fails once, at start, with a
clear message, where SO_REUSEPORT would let any program of the same user bind the port too and quietly take
a share of the traffic; and it works the same on every Unix (SO_REUSEPORT does not spread connections on
macOS). The cost: the kernel wakes the idle workers on a new connection and one of them accepts it, so
connections are spread less evenly than with SO_REUSEPORT's hashing.

Workers are new interpreters (fork + exec), never forks of a process that already made an event loop.
Each runs ``create_app(settings)`` as a single process does: its own uvloop, upstream pools and log writer.
The supervisor runs the store's migrations once before starting them, so they never race to migrate, and it
hosts what they must agree on (``proxy/features/supervisor_state.py``): rate limits without Redis, and each
worker's latest state for ``/readyz``.

A worker that exits without being asked is started again, and the supervisor logs it in one line; one that
keeps crashing soon after start waits longer each time (up to ``MAX_BACKOFF_S``) instead of being restarted
in a tight loop. A worker whose first start fails because the configuration is wrong or the store (or
Redis) cannot be reached stops the whole instance with that status, as one process would. On SIGTERM or
SIGINT the supervisor sends SIGTERM to every worker, waits until each has drained its log queue (their own
graceful stop), and exits 0, or 1 if a worker did not stop cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedgate.config import Settings
from feedgate.errors import SharedStateUnreachable, StoreUnreachable
from feedgate.proxy.features.supervisor_state import StateServer, SupervisorState
from feedgate.store import make_store

log = logging.getLogger("feedgate.workers")
STATE_SOCKET = "state.sock"
PUBLISH_EVERY_S = 1.0
MAX_BACKOFF_S = 30.0
STEADY_AFTER_S = 10.0  # a worker that ran this long before it crashed is restarted at once
FATAL_EXITS = (2, 3)  # cli.EXIT_CONFIG, cli.EXIT_UNREACHABLE: restarting cannot help


@dataclass(frozen=True)
class WorkerOf:
    """What a worker process knows of its supervisor: its own index and the supervisor's runtime directory."""

    index: int
    runtime_dir: str

    @property
    def state_path(self) -> str:
        return str(Path(self.runtime_dir) / STATE_SOCKET)


def worker_count(wanted: int | str) -> int:
    """``server.workers``: a number, or ``auto``: the CPUs this process may run on."""
    if wanted == "auto":
        if hasattr(os, "sched_getaffinity"):  # Linux: a container's or taskset's CPUs, not the machine's
            return max(1, len(os.sched_getaffinity(0)))
        return os.cpu_count() or 1
    return int(wanted)


def worker_settings(settings: Settings, worker: WorkerOf) -> Settings:
    """A worker's settings: a spool of its own (worker 0 keeps the directory a single process uses)."""
    spool = settings.database.spool
    if not spool or worker.index == 0:
        return settings
    database = settings.database.model_copy(update={"spool": str(Path(spool) / f"worker-{worker.index}")})
    return settings.model_copy(update={"database": database})


def worker_ctx(
    worker: WorkerOf, link: Callable[[], SupervisorState], snapshot: Callable[[], dict[str, Any]]
) -> Callable[[Any], AsyncIterator[None]]:
    """A worker's cleanup context: publish its ``snapshot()`` every second, and stop if its supervisor is gone.

    The supervisor starts workers in their own process group, so a Ctrl+C in a terminal reaches only the
    supervisor, which stops them in order; if the supervisor itself is killed, nothing would stop them, so
    each worker watches its parent and stops gracefully (draining its queue) when it changes.
    """
    parent = os.getppid()

    async def publish_forever() -> None:
        while True:
            if os.getppid() != parent:
                log.warning("worker %d: the supervisor is gone; stopping", worker.index)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            try:
                await link().publish(worker.index, {"pid": os.getpid(), **snapshot()})
            except Exception:  # observing must never stop the worker
                log.exception("worker %d: state not published", worker.index)
            await asyncio.sleep(PUBLISH_EVERY_S)

    async def ctx(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(publish_forever(), name="feedgate-worker-publish")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening, inherited by the workers. ``OSError`` when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock


async def migrate_once(settings: Settings) -> None:
    """Open the store once, which applies any migration, so the workers find the schema current."""
    store = make_store(settings)
    await store.open()
    await store.close()


class Supervisor:
    def __init__(self, count: int, worker_command: Sequence[str], sock: socket.socket, runtime_dir: str) -> None:
        self.count = count
        self.worker_command = list(worker_command)
        self.sock = sock
        self.runtime_dir = runtime_dir
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.restarts: dict[int, int] = dict.fromkeys(range(count), 0)
        self.stopping = asyncio.Event()
        self.fatal: int | None = None
        self._signalled: set[int] = set()
        self.server = StateServer(workers_wanted=count, workers_up=self.up)

    def up(self) -> dict[int, int]:
        return {index: proc.pid for index, proc in self.procs.items() if proc.returncode is None}

    async def _start(self, index: int) -> asyncio.subprocess.Process:
        fd = self.sock.fileno()
        flags = ["--worker-of", self.runtime_dir, "--worker-fd", str(fd), "--worker-index", str(index)]
        proc = await asyncio.create_subprocess_exec(*self.worker_command, *flags, pass_fds=(fd,), process_group=0)
        self.procs[index] = proc
        return proc

    async def _keep(self, index: int) -> int:
        """Run worker ``index`` until the instance stops; its exit code at the stop."""
        crashes_in_a_row = 0
        while True:
            started = time.monotonic()
            proc = await self._start(index)
            if self.stopping.is_set():  # the stop came while it was starting: it missed the signal
                self.stop()
            code = await proc.wait()
            if self.stopping.is_set():
                return code
            # Only a first start: a restart that cannot reach the store (down for a while) waits and tries
            # again, rather than stopping the workers that still serve.
            if code in FATAL_EXITS and self.restarts[index] == 0:
                log.error("worker %d (pid %d) exited with %d at start; stopping the instance", index, proc.pid, code)
                self.fatal = code
                self.stop()
                return code
            self.restarts[index] += 1
            crashes_in_a_row = 0 if time.monotonic() - started >= STEADY_AFTER_S else crashes_in_a_row + 1
            delay = 0.0 if crashes_in_a_row <= 1 else min(MAX_BACKOFF_S, 0.5 * 2 ** (crashes_in_a_row - 2))
            log.error(
                "worker %d (pid %d) %s; restarting it%s (restart %d)",
                index,
                proc.pid,
                _how_it_ended(code),
                f" in {delay:.1f}s" if delay else "",
                self.restarts[index],
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stopping.wait()
            if self.stopping.is_set():
                return 0

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping %d workers: each finishes its requests and writes its log queue", len(self.up()))
        self.stopping.set()
        for proc in self.procs.values():
            # Once each: a second SIGTERM to a worker that is draining would cut its drain short.
            if proc.returncode is None and proc.pid not in self._signalled:
                self._signalled.add(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        state_server = await self.server.serve(str(Path(self.runtime_dir) / STATE_SOCKET))
        try:
            codes = await asyncio.gather(*(self._keep(index) for index in range(self.count)))
        finally:
            state_server.close()
            await state_server.wait_closed()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        if self.fatal is not None:
            return self.fatal
        failed = {index: code for index, code in enumerate(codes) if code != 0}
        for index, code in failed.items():
            log.error("worker %d did not stop cleanly: %s", index, _how_it_ended(code))
        log.info("all workers stopped")
        return 1 if failed else 0


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by {name}"
    return f"exited with code {code}"


def supervise(settings: Settings, count: int, worker_command: Sequence[str]) -> int:
    """Run the instance: migrate, bind, start ``count`` workers, and keep them until SIGTERM/SIGINT."""
    try:
        asyncio.run(migrate_once(settings))
    except (StoreUnreachable, SharedStateUnreachable) as exc:
        print(f"feedgate: {exc}", file=sys.stderr)
        return 3
    host, port = settings.server.host, settings.server.port
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        print(f"feedgate: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    runtime_dir = tempfile.mkdtemp(prefix="feedgate-")  # private (0700): the state socket lives here
    bound = sock.getsockname()
    log.info(
        "listening on http://%s:%d with %d workers (supervisor pid %d; Ctrl+C or SIGTERM to stop)",
        host if ":" not in host else f"[{host}]",
        bound[1],
        count,
        os.getpid(),
    )
    try:
        return asyncio.run(Supervisor(count, worker_command, sock, runtime_dir).run())
    finally:
        sock.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)
