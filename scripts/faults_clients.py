"""The ``slowclients`` scenario of scripts/faults.py: streaming clients that read slowly, stop reading, leave.

Phase one is the everyday case: answers streamed at a model's pace (about 20 KB/s), half the clients
reading at half that pace to the end, half reading 4 KiB, stopping, and leaving mid-stream. Phase two is
the bound: clients stalled on a large answer the upstream sends as fast as it can, where the gateway keeps
what it has relayed (for the log) and the kernel takes as much as its socket buffers hold.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from faultkit import Gateway
from faultload import Load, Report, Tally, ms, percentile, sqlite_rows, wait_stored

if TYPE_CHECKING:
    from faults import Ctx

PACE_MS = 50  # one ~1 KB chunk every 50 ms: about 20 KB/s
BIG = 8 << 20


async def raw_stream(port: int, padding: int, pace_ms: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A streamed call on a socket with a small receive buffer; its reader, writer and request ID."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=16384)
    body = b'{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "long"}]}'
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-faults\r\nX-Fake-Stream-Bytes: {padding}\r\nX-Fake-Chunk-Ms: {pace_ms}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    found = re.search(r"(?im)^helicone-id:\s*(\S+)", head)
    return reader, writer, found.group(1) if found else ""


async def stall(port: int, padding: int, pace_ms: int, leave: asyncio.Event) -> str:
    """Read 4 KiB, stop reading, and leave (a reset) when told."""
    reader, writer, request_id = await raw_stream(port, padding, pace_ms)
    await reader.read(4096)
    await leave.wait()
    writer.transport.abort()
    return request_id


async def crawl(port: int, padding: int) -> tuple[str, bool]:
    """Read 1 KiB every 100 ms (10 KiB/s) to the end; whether the whole stream came."""
    reader, writer, request_id = await raw_stream(port, padding, PACE_MS)
    tail = b""
    while block := await reader.read(1024):
        tail = (tail + block)[-64:]
        await asyncio.sleep(0.1)
    writer.close()
    return request_id, b"data: [DONE]" in tail


async def latency(url: str, seconds: float) -> Tally:
    """Four other clients making small calls (JSON and SSE) for ``seconds``."""
    async with Load(url, 4) as load:
        await asyncio.sleep(seconds)
        return await load.stop()


class Rss:
    """The gateway's resident memory, sampled every half second while running."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway, self.samples = gateway, [gateway.rss_mib()]
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.samples.append(self.gateway.rss_mib())

    async def stop(self) -> float:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return max(self.samples)


async def slowclients(ctx: Ctx, report: Report) -> None:
    db = ctx.workdir / "slow.db"
    gateway = await ctx.gateway(FEEDGATE_DATABASE_URL=f"sqlite:///{db}")
    seconds = ctx.args.slow_seconds
    await latency(gateway.url, 1)
    before = gateway.rss_mib()
    alone = await latency(gateway.url, 3)
    stalls = ctx.args.slow_clients // 2
    crawls = ctx.args.slow_clients - stalls
    padding = int(seconds * 1000 / PACE_MS) * 1000  # the stream lasts about --slow-seconds
    leave = asyncio.Event()
    rss = Rss(gateway)
    stalled = [asyncio.create_task(stall(gateway.port, padding, PACE_MS, leave)) for _ in range(stalls)]
    crawling = [asyncio.create_task(crawl(gateway.port, padding)) for _ in range(crawls)]
    await asyncio.sleep(1)
    during = await latency(gateway.url, max(1.0, seconds * 0.6 - 1))
    leave.set()  # mid-stream
    stall_ids = await asyncio.gather(*stalled)
    crawled = await asyncio.wait_for(asyncio.gather(*crawling), 20 * seconds + 60)
    most = await rss.stop()
    everything = stall_ids + [request_id for request_id, _ in crawled]
    await wait_stored(db, everything, timeout=60)
    after = gateway.rss_mib()
    report.detail("clients", f"{crawls} read 10 KiB/s to the end, {stalls} stop reading and leave mid-stream; "
                f"answers of {padding >> 10} KiB streamed over {seconds:g} s")  # fmt: skip
    per_stream = (most - before) * 1024 / ctx.args.slow_clients
    report.info("gateway RSS before / max during / after", f"{before:.0f} / {most:.0f} / {after:.0f} MiB "
                f"({per_stream:.0f} KiB per stream: its answer is kept for the log)")  # fmt: skip
    p50, p50_during = percentile(alone.latencies, 50), percentile(during.latencies, 50)
    p99, p99_during = percentile(alone.latencies, 99), percentile(during.latencies, 99)
    report.check("other clients' p50 / p99: alone, during", f"{ms(p50)} / {ms(p99)}, {ms(p50_during)} / "
                 f"{ms(p99_during)}", p50_during <= 3 * p50 + 0.05 and not during.failures and not during.server_errors,
                 "other clients are served as before (p50 within 3x + 50 ms)")  # fmt: skip
    finished = sum(1 for _, complete in crawled if complete)
    report.check("slow readers' streams complete", f"{finished} of {crawls}", finished == crawls,
                 "a slow reader gets its whole answer")  # fmt: skip
    await rows_of(report, db, "abandoned streams", stall_ids, [request_id for request_id, _ in crawled])
    if ctx.args.big_stalls:
        await big_stalls(ctx, report, gateway, db)


async def big_stalls(ctx: Ctx, report: Report, gateway: Gateway, db: Path) -> None:
    count, leave = ctx.args.big_stalls, asyncio.Event()
    before = gateway.rss_mib()
    rss = Rss(gateway)
    stalled = [asyncio.create_task(stall(gateway.port, BIG, 0, leave)) for _ in range(count)]
    await asyncio.sleep(5)
    leave.set()
    ids = await asyncio.gather(*stalled)
    most = await rss.stop()
    await wait_stored(db, ids, timeout=60)
    sql = f"SELECT error_message FROM requests WHERE request_id IN ({', '.join('?' * len(ids))})"
    said = [row[0] or "" for row in await asyncio.to_thread(sqlite_rows, db, sql, tuple(ids))]
    relayed = [int(found.group(1)) for text in said if (found := re.search(r"after (\d+) bytes", text))]
    mean = sum(relayed) / len(relayed) / (1 << 20) if relayed else float("nan")
    held = (most - before) / count
    report.info(f"large answers: {count} clients stalled 5 s on {BIG >> 20} MiB sent at full speed",
                f"{mean:.1f} MiB relayed to each before it left (what the kernel's socket buffers took), kept for the "
                f"log: gateway RSS {before:.0f} -> {most:.0f} MiB, {held:.1f} MiB per stream")  # fmt: skip
    await rows_of(report, db, "large answers: their rows", ids, [])


async def rows_of(report: Report, db: Path, label: str, left_ids: list[str], crawl_ids: list[str]) -> None:
    rows = await asyncio.to_thread(sqlite_rows, db, "SELECT request_id, status, error_type FROM requests")
    kinds = {request_id: (status, error_type) for request_id, status, error_type in rows}
    sql = "SELECT target_id FROM feedback_events WHERE signal = 'abandoned'"
    abandoned = {row[0] for row in await asyncio.to_thread(sqlite_rows, db, sql)}
    disconnected = sum(1 for request_id in left_ids if kinds.get(request_id, (0, ""))[1] == "client_disconnected")
    signalled = sum(1 for request_id in left_ids if request_id in abandoned)
    report.check(f"{label}: rows client_disconnected / signal abandoned", f"{disconnected} / {signalled} of "
                 f"{len(left_ids)}", disconnected == signalled == len(left_ids),
                 "an abandoned stream is logged as one")  # fmt: skip
    if crawl_ids:
        fine = sum(1 for request_id in crawl_ids if kinds.get(request_id) == (200, None))
        report.check("slow readers' rows: 200, no error", f"{fine} of {len(crawl_ids)}", fine == len(crawl_ids),
                     "a slow reader's call is logged as a success")  # fmt: skip
