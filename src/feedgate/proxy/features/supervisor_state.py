"""Rate limits (and the key-value cache) shared by the worker processes of one ``feedgate serve --workers N``.

Without Redis, each process counting on its own would let a quota of Q through up to N x Q. So the supervisor
holds the one ``LocalState`` (``StateServer``) and serves its operations over a Unix socket in its private
runtime directory; each worker's ``SupervisorState`` is a ``SharedState`` like ``RedisState``, with the same
failure rule: if the link fails, counting falls back to the worker's own process (counted in ``stats`` and
logged), cache reads miss and cache writes are skipped. Only calls that use rate limits or the cache pay a
round trip (about one local socket write and read).

The same link carries each worker's snapshot of its state (log writer counts, queue, in-flight calls) to the
supervisor once a second, and brings all of them back when a worker answers ``/readyz``, so any worker can
speak for the whole instance.

Wire format: frames of a 4-byte big-endian length and an orjson array. A request is ``[seq, op, args]``,
its answer ``[seq, ok, result]``; answers come in order, but the client matches them by ``seq`` anyway.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from feedgate.proxy.features.ratelimit import Window
from feedgate.proxy.features.shared_state import LocalState, SharedStats

log = logging.getLogger("feedgate.shared")
_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 128 * 1024 * 1024
CALL_TIMEOUT_S = 1.0
RECONNECT_EVERY_S = 1.0


class LinkError(Exception):
    """The supervisor did not answer: gone, restarting, or the call timed out."""


async def read_frame(reader: asyncio.StreamReader) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME_BYTES:
        raise LinkError(f"frame of {length} bytes is over the limit")
    return orjson.loads(await reader.readexactly(length))


def frame(value: Any) -> bytes:
    payload = orjson.dumps(value)
    return _LENGTH.pack(len(payload)) + payload


@dataclass
class WorkerSnapshot:
    """What one worker last said about itself, and when (monotonic seconds on the supervisor)."""

    body: dict[str, Any]
    received_at: float


@dataclass
class StateServer:
    """The supervisor's side: one ``LocalState`` for every worker, and the workers' latest snapshots."""

    state: LocalState = field(default_factory=LocalState)
    snapshots: dict[int, WorkerSnapshot] = field(default_factory=dict)
    # Set by the supervisor: how many workers it runs, and which are up now (their index and PID).
    workers_wanted: int = 1
    workers_up: Callable[[], dict[int, int]] = dict

    async def serve(self, path: str) -> asyncio.AbstractServer:
        return await asyncio.start_unix_server(self._connection, path=path)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                seq, op, args = await read_frame(reader)
                try:
                    result, ok = await self._call(op, args), True
                except Exception as exc:  # a bad request must not end the link for the calls behind it
                    result, ok = f"{type(exc).__name__}: {exc}", False
                writer.write(frame([seq, ok, result]))
        except (asyncio.IncompleteReadError, ConnectionError, LinkError, orjson.JSONDecodeError, ValueError):
            pass
        finally:
            # Not awaiting wait_closed: cancelled there at the supervisor's exit, Python 3.11's stream
            # callback would report the cancellation as an error.
            writer.close()

    async def _call(self, op: str, args: list[Any]) -> Any:
        state = self.state
        if op == "take":
            window = await state.take(*args)
            return [window.allowed, window.used, window.oldest]
        if op == "add":
            await state.add(*args)
            return None
        if op == "incr_window":
            return list(await state.incr_window(*args))
        if op == "get":
            value = await state.get(args[0])
            return None if value is None else base64.b64encode(value).decode()
        if op == "set":
            await state.set(args[0], base64.b64decode(args[1]), args[2])
            return None
        if op == "publish":
            self.snapshots[int(args[0])] = WorkerSnapshot(args[1], time.monotonic())
            return None
        if op == "instance":
            return self.instance()
        raise ValueError(f"unknown operation {op!r}")

    def instance(self) -> dict[str, Any]:
        """The workers the supervisor runs now, each with its last snapshot (if it sent one yet)."""
        up = self.workers_up()
        now = time.monotonic()
        workers = []
        for index, pid in sorted(up.items()):
            snapshot = self.snapshots.get(index)
            fresh = snapshot is not None and snapshot.body.get("pid") == pid
            workers.append(
                {
                    "index": index,
                    "pid": pid,
                    "snapshot": snapshot.body if fresh and snapshot is not None else None,
                    "snapshot_age_s": round(now - snapshot.received_at, 3) if fresh and snapshot is not None else None,
                }
            )
        return {"wanted": self.workers_wanted, "up": len(up), "workers": workers}


class SupervisorState:
    """A worker's side of the link: ``SharedState`` answered by the supervisor, local when the link fails."""

    shared = True

    def __init__(self, path: str, *, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.local = LocalState()
        self.stats = SharedStats()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._seq = 0
        self._next_attempt = 0.0
        self._last_warning = 0.0
        self._connecting: asyncio.Lock | None = None

    async def open(self) -> None:
        """Connect now, so a worker started without its supervisor says so (it then counts locally)."""
        with contextlib.suppress(LinkError):
            await self._connected()

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            now = time.monotonic()
            if now < self._next_attempt:  # a supervisor that is gone is not asked again on every call
                raise LinkError("supervisor link down")
            self._next_attempt = now + RECONNECT_EVERY_S
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._reader, self._writer = await asyncio.open_unix_connection(self.path)
            except (OSError, TimeoutError) as exc:
                raise LinkError(f"cannot reach the supervisor: {type(exc).__name__}: {exc}") from None
            self._listener = asyncio.create_task(self._listen(self._reader), name="feedgate-supervisor-link")
            return self._writer

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                seq, ok, result = await read_frame(reader)
                waiter = self._waiting.pop(seq, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(result) if ok else waiter.set_exception(LinkError(str(result)))
        except (asyncio.IncompleteReadError, ConnectionError, LinkError, orjson.JSONDecodeError, ValueError) as exc:
            self._broken(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    def _broken(self, reason: str) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_exception(LinkError(reason))

    async def call(self, op: str, *args: Any) -> Any:
        writer = await self._connected()
        self._seq += 1
        seq = self._seq
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = waiter
        try:
            writer.write(frame([seq, op, list(args)]))
            async with asyncio.timeout(self.timeout_s):
                return await waiter
        except TimeoutError:
            raise LinkError(f"the supervisor did not answer {op} within {self.timeout_s}s") from None
        except (OSError, RuntimeError) as exc:
            self._broken(str(exc))
            raise LinkError(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._waiting.pop(seq, None)

    def _failed(self, what: str, exc: Exception) -> None:
        self.stats.last_error = str(exc)
        now = time.monotonic()
        if now - self._last_warning > 5:
            self._last_warning = now
            log.warning(
                "supervisor link failed (%s); %s in this worker only (fallbacks %d, cache errors %d)",
                self.stats.last_error,
                what,
                self.stats.fallbacks,
                self.stats.cache_errors,
            )

    async def take(self, key: str, window_s: float, limit: float, units: float, now: float) -> Window:
        try:
            allowed, used, oldest = await self.call("take", key, window_s, limit, units, now)
        except LinkError as exc:
            self.stats.fallbacks += 1
            self._failed("rate limits hold", exc)
            return await self.local.take(key, window_s, limit, units, now)
        return Window(bool(allowed), float(used), None if oldest is None else float(oldest))

    async def add(self, key: str, window_s: float, units: float, now: float) -> None:
        try:
            await self.call("add", key, window_s, units, now)
        except LinkError as exc:
            self.stats.fallbacks += 1
            self._failed("rate limits hold", exc)
            await self.local.add(key, window_s, units, now)

    async def incr_window(self, key: str, window_s: float, amount: int = 1) -> tuple[int, float]:
        try:
            count, reset = await self.call("incr_window", key, window_s, amount)
        except LinkError as exc:
            self.stats.fallbacks += 1
            self._failed("counting", exc)
            return await self.local.incr_window(key, window_s, amount)
        return int(count), float(reset)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.call("get", key)
        except LinkError as exc:
            self.stats.cache_errors += 1
            self._failed("cache reads miss", exc)
            return None
        return None if value is None else base64.b64decode(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.call("set", key, base64.b64encode(value).decode(), ttl_s)
        except LinkError as exc:
            self.stats.cache_errors += 1
            self._failed("cache writes skipped", exc)

    async def publish(self, index: int, snapshot: dict[str, Any]) -> None:
        """Tell the supervisor how this worker is; a failed link only means the next one tries again."""
        with contextlib.suppress(LinkError):
            await self.call("publish", index, snapshot)

    async def instance(self) -> dict[str, Any]:
        """Every worker's latest snapshot; ``LinkError`` when the supervisor does not answer."""
        found: dict[str, Any] = await self.call("instance")
        return found

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        self._broken("closed")
        await self.local.close()
