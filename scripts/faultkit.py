"""What scripts/faults.py runs: a fake upstream, a TCP relay that can fail, and real gateway processes.

Nothing here imports feedgate or the tests: the gateway is a real ``python -m feedgate serve`` process
configured through ``FEEDGATE_*`` variables, observed only from outside (HTTP, its log, its database file,
``/proc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

MODEL = "gpt-4o-mini"
TEXT = "Hello from the fake upstream"
LIVE_PIDS: set[int] = set()  # every gateway still running, for the last-resort cleanup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------ fake upstream
def _sse(data: dict[str, Any] | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunk(content: str | None, usage: bool, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    chunk: dict[str, Any] = {
        "id": "chatcmpl-faults",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        chunk["usage"] = None
    return _sse(chunk)


USAGE = {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}


async def _chat(request: web.Request) -> web.StreamResponse:
    """OpenAI's chat completions, as JSON or as an SSE stream with usage when asked for it.

    ``X-Fake-Delay-Ms`` waits before answering; ``X-Fake-Stream-Bytes`` pads a stream with that many bytes
    of content in chunks of about 1 KB, sent as they are read (a stalled reader holds the rest back), with
    ``X-Fake-Chunk-Ms`` between them (a model producing tokens at its own pace)."""
    body = await request.json()
    delay_ms = float(request.headers.get("X-Fake-Delay-Ms", "0"))
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    if not body.get("stream"):
        message = {"role": "assistant", "content": TEXT}
        return web.json_response(
            {
                "id": "chatcmpl-faults",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": USAGE,
            }
        )
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    padding = int(request.headers.get("X-Fake-Stream-Bytes", "0"))
    pause = float(request.headers.get("X-Fake-Chunk-Ms", "0")) / 1000
    try:
        for word in TEXT.split(" "):
            await response.write(_chunk(f"{word} ", usage))
        filler = _chunk("x" * 1000, usage)
        for _ in range(padding // len(filler)):
            await response.write(filler)
            if pause:
                await asyncio.sleep(pause)
        await response.write(_chunk(None, usage, "stop"))
        if usage:
            await response.write(_sse({"id": "chatcmpl-faults", "model": MODEL, "choices": [], "usage": USAGE}))
        await response.write(_sse("[DONE]"))
        await response.write_eof()
    except ConnectionError:  # the gateway let go of a stream its client abandoned
        pass
    return response


class Upstream:
    """The fake upstream in a process of its own (``python faultkit.py upstream PORT``), so the load this
    script drives and the answers it serves do not share one event loop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> str:
        self.proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "upstream", str(self.port))
        LIVE_PIDS.add(self.proc.pid)
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self.url
            await asyncio.sleep(0.05)
        raise RuntimeError("the fake upstream did not start")

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
            LIVE_PIDS.discard(self.proc.pid)


def serve_upstream(port: int) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _chat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024, shutdown_timeout=1)


# ----------------------------------------------------------------------------------------------- TCP relay
class Relay:
    """A TCP relay to a real service. ``cut()``: live connections dropped, new ones refused. ``blackhole()``:
    connections accepted, nothing forwarded either way (held, as by a network dropping packets), until
    ``restore()``, after which what was held flows on, as TCP retransmits it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    def blackhole(self) -> None:
        self._flowing.clear()

    async def restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._writers.add(client_writer)
        with contextlib.suppress(asyncio.CancelledError):  # the loop ending: nobody is left to tell
            await self._flowing.wait()
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            except OSError:
                client_writer.transport.abort()
                return
            self._writers.add(upstream_writer)
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
            self._writers -= {client_writer, upstream_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


# ------------------------------------------------------------------------------------------------ gateway
@dataclass
class Gateway:
    """One ``feedgate serve`` process at a time (``start`` again after it ended: a restart), stderr to a file."""

    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, ready_s: float = 60.0) -> None:
        env = {name: value for name, value in os.environ.items() if not name.startswith(("FEEDGATE_", "OTEL_"))}
        env.update(OTEL_SDK_DISABLED="true", FEEDGATE_SERVER_PORT=str(self.port), FEEDGATE_SERVER_ACCESS_LOG="false")
        env.update(self.env)
        self.starts += 1
        self.log_path = self.workdir / f"gateway-{self.starts}.log"
        with self.log_path.open("wb") as stderr:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "feedgate", "serve", env=env, stdout=stderr, stderr=stderr
            )
        LIVE_PIDS.add(self.proc.pid)
        deadline = time.monotonic() + ready_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"feedgate serve exited with {self.proc.returncode}: {self.log()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as answer:
                        if answer.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"feedgate serve was not ready within {ready_s:g}s: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path is not None else ""

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        LIVE_PIDS.discard(self.proc.pid)
        return code

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        await self.wait()

    async def stop(self) -> None:
        """Cleanup: SIGTERM, then SIGKILL if it has not ended in 90 s (a full disk may take a while)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await self.wait(90)
        except TimeoutError:
            await self.kill9()

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def kill_leftovers() -> None:
    """Last resort (the script itself interrupted): no gateway outlives it."""
    for pid in list(LIVE_PIDS):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    LIVE_PIDS.clear()


if __name__ == "__main__" and sys.argv[1:2] == ["upstream"]:
    serve_upstream(int(sys.argv[2]))
