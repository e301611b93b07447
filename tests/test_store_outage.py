"""PostgreSQL that is not there: at start (a clear error, or a wait) and while running (rows wait, then land).

The database "goes away" through a TCP relay the test cuts: connections drop and new ones are refused, as when
the server restarts or the network fails. Needs FEEDGATE_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from conftest import GatewayFactory
from feedgate.appkeys import STORE
from feedgate.config import load_settings
from feedgate.store import make_store
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest
from feedgate.store.postgres import PostgresStore
from feedgate.store.utc import utc_text
from feedgate.store.writer import Writer
from pgschema import Schemas
from serving import spawn, wait_ready
from tcpproxy import TcpProxy, free_port

MESSAGES = [{"role": "user", "content": "Say hello"}]


def via(url: str, port: int) -> str:
    """The same database URL, reached through 127.0.0.1:port."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"))


async def relay_to(url: str) -> TcpProxy:
    parts = urlsplit(url)
    return await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()


@dataclass
class Logged:
    request_id: str

    def held_bytes(self) -> int:
        return len(self.request_id)


def as_row(item: Logged) -> InsertRequest:
    values = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=item.request_id,
        datetime_utc=utc_text(),
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        is_stream=0,
        properties_json="{}",
        body_bytes=0,
    )
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_rows_wait_in_the_bounded_queue_and_land_when_the_database_returns(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    relay = await relay_to(url)
    store = PostgresStore(via(url, relay.port))
    await store.open()
    writer = Writer(store, as_row, queue_size=500, retry_max_s=0.2)
    writer.start()
    try:
        assert all(writer.log(Logged(f"before-{n}")) for n in range(100))
        await until(lambda: writer.stats.written == 100)

        await relay.cut()
        assert all(writer.log(Logged(f"during-{n}")) for n in range(300))
        await until(lambda: writer.stats.store_errors >= 2)  # the writer has that batch in hand, retrying
        # The queue holds 500 more; what does not fit is refused at once and counted, never silently lost.
        accepted = [writer.log(Logged(f"late-{n}")) for n in range(600)]
        assert accepted.count(False) == 100 and writer.stats.dropped_queue_full == 100
        assert writer.stats.written == 100 and writer.stats.last_error
        with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
            await store.ping()

        await relay.restore()
        await writer.flush(timeout=15)
        assert writer.stats.written == 900 and writer.stats.dropped_store_error == 0
        assert await store.count_requests() == 900
        assert await store.requests_exist(["during-299", "late-499", "late-500"]) == {"during-299", "late-499"}
    finally:
        await writer.stop(timeout=10)
        await store.close()
        await relay.cut()


async def test_proxied_calls_succeed_while_the_database_is_away(
    pg_schemas: Schemas,
    make_gateway: GatewayFactory,
    http: aiohttp.ClientSession,
) -> None:
    url = pg_schemas.new_url()
    relay = await relay_to(url)
    gateway = await make_gateway(database={"url": via(url, relay.port)})
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    headers = {"Authorization": "Bearer sk-test"}
    try:
        await relay.cut()
        answered = []
        for _ in range(20):
            async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
                assert r.status == 200
                answered.append(r.headers["Helicone-Id"])
        async with http.get(f"{gateway.url}/readyz") as r:
            ready = await r.json()
            assert r.status == 503 and "store unreachable" in ready["error"]
        # The writer gathers rows for a moment before it writes: wait until it has met the outage.
        for _ in range(200):
            async with http.get(f"{gateway.url}/readyz") as r:
                if (await r.json())["log"]["store_errors"] > 0:
                    break
            await asyncio.sleep(0.05)
        await relay.restore()
        await gateway.settled(timeout=20)
        for request_id in answered:
            async with http.get(f"{gateway.v1}/request/{request_id}") as r:
                assert r.status == 200, request_id
        async with http.get(f"{gateway.url}/readyz") as r:
            ready = await r.json()
            assert r.status == 200 and ready["log"]["store_errors"] > 0 and ready["log"]["dropped_queue_full"] == 0
    finally:
        await relay.cut()


async def test_readyz_answers_in_time_while_the_database_swallows_everything(
    pg_schemas: Schemas, make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    # A blackhole, not a refusal: asyncpg's own timeouts (the command timeout, 60 s) would make /readyz hang,
    # and a load balancer's probe with it. It must answer 503 within its timeout, and keep doing so.
    url = pg_schemas.new_url()
    relay = await relay_to(url)
    gateway = await make_gateway(database={"url": via(url, relay.port)}, server={"readyz_timeout_s": 0.5})
    try:
        await relay.blackhole()
        for _ in range(3):
            async with asyncio.timeout(5), http.get(f"{gateway.url}/readyz") as r:
                ready = await r.json()
                assert r.status == 503 and "store unreachable: no answer for" in ready["error"]
        await relay.restore()
        async with asyncio.timeout(30):
            while True:
                async with http.get(f"{gateway.url}/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.2)
    finally:
        await relay.cut()


async def test_a_read_the_database_does_not_answer_in_time_is_a_503_with_a_reason(
    pg_schemas: Schemas, make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    """A report over rows of a huge store can outlast the read timeout (60 s; here a millisecond, so that every
    read outlasts it): the caller gets a 503 in Helicone's shape that says what to do, never a 500, and the
    same call answers once reads are quick enough again."""
    gateway = await make_gateway(database={"url": pg_schemas.new_url()})
    store = gateway.app[STORE]
    assert isinstance(store, PostgresStore)
    store.read_timeout_s = 0.001
    params = {"group_by": "user", "since": "2026-01-01T00:00:00Z"}
    async with asyncio.timeout(10), http.get(f"{gateway.v1}/feedback/stats", params=params) as r:
        answer = await r.json()
    assert r.status == 503 and answer["data"] is None
    assert "did not answer within 0.001 s; narrow the time range" in answer["error"]
    store.read_timeout_s = 60.0
    async with asyncio.timeout(10), http.get(f"{gateway.v1}/feedback/stats", params=params) as r:
        assert r.status == 200 and (await r.json())["data"]["overall"]["requests"] == 0


async def test_serve_with_an_unreachable_database_says_so_and_exits_3(pg_schemas: Schemas) -> None:
    url = via(pg_schemas.new_url(), free_port())
    proc = await spawn({"FEEDGATE_DATABASE_URL": url}, free_port())
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    text = stderr.decode()
    assert proc.returncode == 3, text
    assert "feedgate: cannot reach the database at postgresql://" in text and "connect_wait_s" in text
    assert "Traceback" not in text


async def test_serve_waits_for_a_database_that_comes_up_within_connect_wait_s(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    parts = urlsplit(url)
    relay = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = free_port()
    proc = await spawn({"FEEDGATE_DATABASE_URL": via(url, relay.port), "FEEDGATE_DATABASE_CONNECT_WAIT_S": "20"}, port)
    assert proc.stderr is not None
    seen = b""
    try:
        # The database comes up only once the gateway has found it missing (however long its start took).
        while b"database not reachable yet" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, f"gateway exited without waiting: {seen.decode()}"
            seen += line
        assert proc.returncode is None
        await relay.start()
        await wait_ready(f"http://127.0.0.1:{port}", proc, attempts=300)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)
        await relay.cut()
    assert proc.returncode == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_row_the_database_rejects_is_dropped_and_counted_not_retried_forever(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    if kind == "postgres":
        # Asked for only here, so the SQLite case runs (and the postgres one skips) without PostgreSQL.
        schemas: Schemas = request.getfixturevalue("pg_schemas")
        url = schemas.new_url()
    store = make_store(load_settings(environ={}, overrides={"database": {"url": url}}))
    await store.open()

    def rejected_or_row(item: Logged) -> InsertRequest:
        row = as_row(item)
        # request_id NULL breaks a NOT NULL constraint: no retry can ever write it.
        return InsertRequest((None, *row.values[1:])) if item.request_id.startswith("bad") else row

    writer = Writer(store, rejected_or_row, retry_max_s=0.2)
    writer.start()
    try:
        writer.log(Logged("bad-alone"))  # a batch of one
        await writer.flush()
        for name in ("ok-1", "bad-among", "ok-2"):  # a batch the bad row must not sink
            writer.log(Logged(name))
        await writer.flush()
        assert writer.stats.dropped_store_error == 2 and writer.stats.written == 2
        assert await store.requests_exist(["ok-1", "ok-2"]) == {"ok-1", "ok-2"}
    finally:
        await writer.stop(timeout=10)
        await store.close()


async def test_postgresql_reads_run_without_jit(pg_schemas: Schemas) -> None:
    """JIT compilation cost each rollup read about 40 ms for queries that then ran in tens: sessions turn it off."""
    store = PostgresStore(pg_schemas.new_url())
    await store.open()
    try:
        assert await store.fetch("SHOW jit") == [("off",)]
    finally:
        await store.close()
