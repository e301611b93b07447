"""The feedback API's figures, with proxied traffic running beside it.

    python scripts/bench_feedback.py [--seconds 5]

Starts a fake OpenAI upstream and a real ``feedgate serve`` process (SQLite in a temporary folder), keeps
proxied chat completions flowing (8 clients, about 500 per second by default) for the whole run, and measures:
a single rating round trip at concurrency 1 (median and p99), sustained rating throughput at
concurrency 32, and how long a 1,000-item batch takes to be stored. Every rating is checked to be
answered 201 or 202.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes import FakeUpstream, openai_app, serve_app  # noqa: E402
from serving import wait_ready  # noqa: E402
from tcpproxy import free_port  # noqa: E402

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}


async def traffic(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, ids: list[str], pause: float) -> None:
    while not stop.is_set():
        async with http.post(f"{url}/v1/chat/completions", json=BODY, headers={"Authorization": "Bearer k"}) as r:
            await r.read()
            ids.append(r.headers["Helicone-Id"])
        await asyncio.sleep(pause)


async def rate(http: aiohttp.ClientSession, url: str, request_id: str, n: int) -> None:
    async with http.post(f"{url}/v1/request/{request_id}/feedback", json={"rating": n % 2 == 0}) as r:
        await r.read()
        assert r.status in (201, 202), r.status


async def main(seconds: float, proxied_rps: float) -> None:
    async with serve_app(openai_app(FakeUpstream())) as upstream:
        port = free_port()
        workdir = tempfile.mkdtemp()
        env = {
            **os.environ,
            "FEEDGATE_OPENAI_BASE_URL": upstream,
            "FEEDGATE_DATABASE_URL": f"sqlite:///{workdir}/fg.db",
            "FEEDGATE_SERVER_ACCESS_LOG": "false",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "feedgate",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        stop, ids = asyncio.Event(), []
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            # Eight clients, each pausing between calls, give the proxied rate asked for (a busy gateway,
            # not a saturated one: at saturation every request queues, ratings included).
            pause = 8 / proxied_rps if proxied_rps > 0 else 0.0
            background = [asyncio.create_task(traffic(http, url, stop, ids, pause)) for _ in range(8)]
            started_traffic = time.perf_counter()
            await asyncio.sleep(0.5)
            # 1. One rating at a time.
            latencies = []
            deadline = time.perf_counter() + seconds
            n = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await rate(http, url, ids[n % len(ids)], n)
                latencies.append((time.perf_counter() - started) * 1000)
                n += 1
            latencies.sort()
            print(
                f"rating round trip, c=1: median {statistics.median(latencies):.2f} ms, "
                f"p99 {latencies[int(len(latencies) * 0.99)]:.2f} ms ({len(latencies)} ratings)"
            )
            # 2. Sustained throughput at c=32.
            done = 0

            async def worker(k: int) -> None:
                nonlocal done
                while time.perf_counter() < end:
                    await rate(http, url, ids[(k * 7919 + done) % len(ids)], done)
                    done += 1

            end = time.perf_counter() + seconds
            begun = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(32)))
            print(f"sustained ratings, c=32: {done / (time.perf_counter() - begun):.0f} per second")
            # 3. A 1,000-item batch.
            items = [
                {"requestId": ids[i % len(ids)], "rating": i % 3 != 0, "scores": {"stars": i % 5 + 1}}
                for i in range(1000)
            ]
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                async with http.post(f"{url}/v1/feedback/batch", json={"items": items}) as r:
                    results = (await r.json())["data"]["results"]
                timings.append((time.perf_counter() - started) * 1000)
                assert len(results) == 1000 and all(x["status"] != "invalid" for x in results)
            print(f"1,000-item batch stored: median {statistics.median(timings):.1f} ms (of 5)")
            stop.set()
            await asyncio.gather(*background)
            elapsed = time.perf_counter() - started_traffic
            print(f"proxied calls answered meanwhile: {len(ids)} ({len(ids) / elapsed:.0f} per second)")
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--proxied-rps", type=float, default=500.0, help="proxied calls per second beside (0: flat out)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.proxied_rps))
