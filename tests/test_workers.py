"""``feedgate serve --workers N``: real supervisor and worker processes on one port and one SQLite file."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from feedgate.config import load_settings
from feedgate.errors import ConfigError
from feedgate.proxy.features.supervisor_state import StateServer, SupervisorState
from feedgate.workers import Supervisor, listening_socket, migrate_once, worker_count
from serving import spawn, wait_ready
from tcpproxy import free_port

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


@dataclass
class Instance:
    url: str
    proc: asyncio.subprocess.Process
    log: Path  # the supervisor's and workers' stderr: a file, so a chatty instance never blocks on a pipe
    db: Path

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.v1, api_key="sk-test", max_retries=0, **kwargs)


Start = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start(upstream_url: str, tmp_path: Path) -> AsyncIterator[Start]:
    async with AsyncExitStack() as stack:

        async def start_instance(workers: int = 2, **env: str) -> Instance:
            port = free_port()
            log = tmp_path / f"serve-{port}.log"
            db = tmp_path / "fg.db"
            stderr = stack.enter_context(log.open("wb"))
            variables = {
                "FEEDGATE_DATABASE_URL": f"sqlite:///{db}",
                "FEEDGATE_OPENAI_BASE_URL": upstream_url,
                "FEEDGATE_SERVER_WORKERS": str(workers),
                "FEEDGATE_SERVER_ACCESS_LOG": "false",
                **env,
            }
            proc = await spawn(variables, port, stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
            stack.push_async_callback(_stop, proc)
            instance = Instance(f"http://127.0.0.1:{port}", proc, log, db)
            await wait_ready(instance.url, proc)
            return instance

        yield start_instance


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await asyncio.wait_for(proc.wait(), 60)


async def readyz(http: aiohttp.ClientSession, instance: Instance) -> dict[str, Any]:
    async with http.get(f"{instance.url}/readyz") as r:
        body: dict[str, Any] = await r.json()
        return body


async def all_workers_up(http: aiohttp.ClientSession, instance: Instance, count: int) -> dict[str, Any]:
    """``/readyz`` once every worker is up and has published its state."""
    for _ in range(400):
        body = await readyz(http, instance)
        workers = body.get("workers", {})
        if workers.get("up") == count and all(each["written"] is not None for each in workers.get("each", [])):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"workers never all up: {body}")


def one_connection_each() -> openai.DefaultAsyncHttpxClient:
    """The SDK's own HTTP client, opening a new connection for every call, so calls spread over the workers."""
    return openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_keepalive_connections=0))


async def test_two_workers_on_one_sqlite_file_under_load_then_sigterm_lose_no_row(
    start: Start, http: aiohttp.ClientSession
) -> None:
    instance = await start(2)
    ready = await all_workers_up(http, instance, 2)
    assert ready["status"] == "ready" and ready["workers"]["wanted"] == 2
    assert len({each["pid"] for each in ready["workers"]["each"]}) == 2
    answered: list[str] = []

    async def one(api: openai.AsyncOpenAI) -> None:
        try:
            raw = await api.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Fake-Behavior": "slow:20"}
            )
        except openai.APIConnectionError:
            return  # sent after the workers stopped listening: never answered, so nothing to log
        answered.append(raw.headers["Helicone-Id"])

    async with instance.client(http_client=one_connection_each()) as api:
        load = [asyncio.create_task(one(api)) for _ in range(300)]
        while len(answered) < 100:
            await asyncio.sleep(0.01)
        instance.proc.send_signal(signal.SIGTERM)
        await asyncio.gather(*load)
    await asyncio.wait_for(instance.proc.wait(), 60)
    stderr = instance.log.read_text()
    assert instance.proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "database is locked" not in stderr, stderr[-3000:]
    assert "all workers stopped" in stderr
    assert "did not stop cleanly" not in stderr  # the workers, all alive, never took each other for crashed
    with sqlite3.connect(instance.db) as conn:
        logged = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
    assert len(answered) >= 100
    assert logged == set(answered)


async def test_a_worker_killed_with_sigkill_is_restarted_and_the_instance_keeps_answering(
    start: Start, http: aiohttp.ClientSession
) -> None:
    instance = await start(2)
    before = await all_workers_up(http, instance, 2)
    victim = before["workers"]["each"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    for _ in range(400):
        after = await all_workers_up(http, instance, 2)
        pids = {each["pid"] for each in after["workers"]["each"]}
        if victim["pid"] not in pids and after["unclean_stops"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the killed worker was not replaced and reported")
    assert [run["pid"] for run in after["unclean_stops"]] == [victim["pid"]]  # whichever worker answered
    said = f"worker {victim['index']} (pid {victim['pid']}) was killed by SIGKILL; restarting it (restart 1)"
    log = instance.log.read_text()
    assert said in log
    assert log.count("did not stop cleanly") == 1  # reported once for the instance, not once per worker
    async with instance.client(http_client=one_connection_each()) as api:
        answers = await asyncio.gather(
            *(api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(20))
        )
    assert all(answer.choices[0].message.content for answer in answers)
    instance.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(instance.proc.wait(), 60) == 0


async def test_a_rate_limit_holds_across_workers_without_redis(start: Start, http: aiohttp.ClientSession) -> None:
    instance = await start(2)
    await all_workers_up(http, instance, 2)
    quota = 3
    headers = {"Helicone-RateLimit-Policy": f"{quota};w=600"}
    async with openai.AsyncOpenAI(
        base_url=instance.v1, api_key=f"sk-{uuid.uuid4().hex}", max_retries=0, http_client=one_connection_each()
    ) as api:

        async def one() -> int:
            try:
                await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
            except openai.RateLimitError:
                return 429
            return 200

        statuses = await asyncio.gather(*(one() for _ in range(3 * quota)))
    assert sorted(statuses) == [200] * quota + [429] * (2 * quota)


async def test_feedback_posted_to_any_worker_lands_and_pending_feedback_is_claimed_once(
    start: Start, http: aiohttp.ClientSession
) -> None:
    instance = await start(2)
    await all_workers_up(http, instance, 2)
    early = f"early-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        async with fresh.post(f"{instance.v1}/request/{early}/feedback", json={"rating": True}) as r:
            assert r.status == 202 and (await r.json())["data"] == {"status": "pending"}
        async with instance.client(http_client=one_connection_each()) as api:
            raws = await asyncio.gather(
                *(
                    api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
                    for _ in range(10)
                ),
                api.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=MESSAGES, extra_headers={"Helicone-Request-Id": early}
                ),
            )
        request_ids = [raw.headers["Helicone-Id"] for raw in raws[:-1]]
        for index, request_id in enumerate(request_ids):
            await _until_logged(fresh, instance, request_id)
            async with fresh.post(f"{instance.v1}/request/{request_id}/feedback", json={"rating": index % 2 == 0}) as r:
                assert r.status == 201, await r.text()
        await _until_logged(fresh, instance, early)
        for index, request_id in enumerate([*request_ids, early]):
            async with fresh.get(f"{instance.v1}/request/{request_id}/feedback") as r:
                state = (await r.json())["data"]
            assert state["rating"] is (index % 2 == 0 if request_id != early else True)
            assert state["request_known"] is True
    instance.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(instance.proc.wait(), 60) == 0
    with sqlite3.connect(instance.db) as conn:
        unlinked = conn.execute(
            "SELECT count(*) FROM feedback_events e WHERE NOT EXISTS "
            "(SELECT 1 FROM requests r WHERE r.request_id = e.target_id)"
        ).fetchone()[0]
        events = conn.execute("SELECT count(*) FROM feedback_events WHERE target_id = ?", (early,)).fetchone()[0]
        ratings = conn.execute("SELECT count(*) FROM feedback WHERE target_id = ?", (early,)).fetchone()[0]
    assert (unlinked, events, ratings) == (0, 1, 1)


async def _until_logged(http: aiohttp.ClientSession, instance: Instance, request_id: str) -> None:
    for _ in range(400):
        async with http.get(f"{instance.v1}/request/{request_id}") as r:
            if r.status == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"request {request_id} never logged")


async def metric(http: aiohttp.ClientSession, instance: Instance, name: str) -> float:
    """The sum of the samples named ``name`` in one scrape of ``/metrics``."""
    async with http.get(f"{instance.url}/metrics") as r:
        text = await r.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def test_readyz_and_metrics_of_any_worker_count_every_worker(start: Start, http: aiohttp.ClientSession) -> None:
    instance = await start(2)
    await all_workers_up(http, instance, 2)
    async with instance.client(http_client=one_connection_each()) as api:
        await asyncio.gather(*(api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(40)))
    for _ in range(400):
        body = await readyz(http, instance)
        each = body["workers"]["each"]
        if body["log"]["written"] == 40 and sum(worker["written"] for worker in each) == 40:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"/readyz never counted the 40 rows of both workers: {body}")
    assert body["workers"]["up"] == 2
    # Each scrape is answered by one worker, which adds the others' last published series to its own.
    for _ in range(400):
        counted = [
            await metric(http, instance, name)
            for name in (
                "feedgate_requests_total",
                "feedgate_request_duration_seconds_count",
                "feedgate_log_rows_written_total",
            )
        ]
        if counted == [40, 40, 40]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"/metrics never counted the 40 calls of both workers: {counted}")


async def test_one_worker_is_one_process_as_before(start: Start, http: aiohttp.ClientSession) -> None:
    instance = await start(1)
    body = await readyz(http, instance)
    assert body["status"] == "ready" and "workers" not in body
    instance.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(instance.proc.wait(), 60) == 0
    assert "supervisor" not in instance.log.read_text()


async def test_a_port_already_taken_stops_the_supervisor_with_a_clear_message(start: Start, tmp_path: Path) -> None:
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        proc = await spawn(
            {"FEEDGATE_SERVER_WORKERS": "2", "FEEDGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'fg.db'}"}, port
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        taken.close()
    assert proc.returncode == 1
    assert re.search(rf"cannot listen on 127\.0\.0\.1:{port}: .*in use", stderr.decode(), re.I), stderr.decode()


def test_the_workers_setting_takes_a_count_or_auto() -> None:
    assert load_settings(None, environ={"FEEDGATE_SERVER_WORKERS": "auto"}).server.workers == "auto"
    assert load_settings(None, environ={"FEEDGATE_SERVER_WORKERS": "4"}).server.workers == 4
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    for wrong in ("0", "-2", "many", "1.5"):
        with pytest.raises(ConfigError, match="server.workers: must be a whole number of at least 1, or auto"):
            load_settings(None, environ={"FEEDGATE_SERVER_WORKERS": wrong})


async def test_workers_count_against_one_supervisor_and_fall_back_to_their_own_when_it_is_gone(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "state.sock")
    server = StateServer()
    listening = await server.serve(path)
    first, second = SupervisorState(path), SupervisorState(path)
    try:
        await first.open()
        windows = [await state.take("tenant", 60.0, 2, 1, 1000.0) for state in (first, second, first)]
        assert [window.allowed for window in windows] == [True, True, False]
        await first.set("answer", b"\x00cached\xff", 60.0)
        assert await second.get("answer") == b"\x00cached\xff"
        assert (first.stats.fallbacks, second.stats.fallbacks) == (0, 0)
    finally:
        listening.close()
        await listening.wait_closed()
        await first.close()
        await second.close()
    alone = SupervisorState(str(tmp_path / "nobody.sock"))
    windows = [await alone.take("tenant", 60.0, 1, 1, 1000.0) for _ in range(2)]
    assert [window.allowed for window in windows] == [True, False]  # counted in this process instead
    assert alone.stats.fallbacks == 2 and await alone.get("answer") is None
    assert alone.stats.cache_errors == 1
    await alone.close()


@pytest.fixture
def runtime_dir() -> Iterator[str]:
    """Short, as a Unix socket's path must be."""
    path = tempfile.mkdtemp(prefix="fgw-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_the_supervisor_restarts_a_killed_worker_and_stops_every_worker_cleanly(
    upstream_url: str,
    tmp_path: Path,
    runtime_dir: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    http: aiohttp.ClientSession,
) -> None:
    """The supervisor in this process, its workers real ``feedgate serve`` processes."""
    monkeypatch.setenv("FEEDGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'fg.db'}")
    monkeypatch.setenv("FEEDGATE_OPENAI_BASE_URL", upstream_url)
    monkeypatch.setenv("FEEDGATE_SERVER_ACCESS_LOG", "false")
    await migrate_once(load_settings(None))
    sock = listening_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    supervisor = Supervisor(2, [sys.executable, "-m", "feedgate", "serve"], sock, runtime_dir)
    caplog.set_level(logging.INFO, logger="feedgate.workers")
    running = asyncio.create_task(supervisor.run())
    try:
        instance = Instance(url, cast(asyncio.subprocess.Process, None), tmp_path / "unused.log", tmp_path / "fg.db")
        before = await all_workers_up(http, instance, 2)
        victim = before["workers"]["each"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        for _ in range(400):
            if supervisor.restarts[victim["index"]] == 1 and len(supervisor.up()) == 2:
                break
            await asyncio.sleep(0.05)
        await all_workers_up(http, instance, 2)
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0) as api:
            answer = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert answer.choices[0].message.content
    finally:
        supervisor.stop()
        code = await asyncio.wait_for(running, 60)
        sock.close()
    assert code == 0
    said = f"worker {victim['index']} (pid {victim['pid']}) was killed by SIGKILL; restarting it (restart 1)"
    assert said in caplog.text and "all workers stopped" in caplog.text


async def test_a_worker_that_keeps_crashing_is_restarted_later_and_later(
    runtime_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    sock = listening_socket("127.0.0.1", 0)
    crashing = [sys.executable, "-c", "raise SystemExit(7)"]  # stands in for a worker that dies at once
    supervisor = Supervisor(1, crashing, sock, runtime_dir)
    caplog.set_level(logging.INFO, logger="feedgate.workers")
    running = asyncio.create_task(supervisor.run())
    try:
        while supervisor.restarts[0] < 4:
            await asyncio.sleep(0.05)
    finally:
        supervisor.stop()
        code = await asyncio.wait_for(running, 60)
        sock.close()
    assert code == 0  # stopped while waiting to restart: nothing was running
    lines = [line for line in caplog.text.splitlines() if "exited with code 7" in line]
    assert "restarting it (restart 1)" in lines[0]
    assert "restarting it in 0.5s (restart 2)" in lines[1]
    assert "restarting it in 1.0s (restart 3)" in lines[2]
    assert "restarting it in 2.0s (restart 4)" in lines[3]


async def test_a_worker_that_cannot_start_stops_the_instance_with_its_status(runtime_dir: str) -> None:
    sock = listening_socket("127.0.0.1", 0)
    unreachable = [sys.executable, "-c", "raise SystemExit(3)"]  # what cli returns when the store is unreachable
    try:
        code = await asyncio.wait_for(Supervisor(2, unreachable, sock, runtime_dir).run(), 60)
    finally:
        sock.close()
    assert code == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_workers_whose_supervisor_was_killed_stop_on_their_own_and_write_their_rows(
    start: Start, http: aiohttp.ClientSession
) -> None:
    instance = await start(2)
    ready = await all_workers_up(http, instance, 2)
    pids = [each["pid"] for each in ready["workers"]["each"]]
    async with instance.client(http_client=one_connection_each()) as api:
        raws = await asyncio.gather(
            *(api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(30))
        )
    instance.proc.kill()
    await instance.proc.wait()
    for _ in range(600):
        if not any(_alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("workers outlived their supervisor")
    assert "the supervisor is gone; stopping" in instance.log.read_text()
    with sqlite3.connect(instance.db) as conn:
        logged = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
        unclean = conn.execute("SELECT count(*) FROM feedgate_runs WHERE stopped_utc IS NULL").fetchone()[0]
    assert logged == {raw.headers["Helicone-Id"] for raw in raws}
    assert unclean == 0  # each worker noted its clean stop


async def test_with_a_spool_a_worker_killed_under_load_loses_no_answered_call(
    start: Start, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    # Each writer gathers rows for a second before it writes them: the killed worker surely held some.
    instance = await start(2, FEEDGATE_DATABASE_SPOOL=str(spool), FEEDGATE_DATABASE_BATCH_WAIT_MS="1000")
    ready = await all_workers_up(http, instance, 2)
    victim = ready["workers"]["each"][1]
    answered: list[str] = []

    async def one(api: openai.AsyncOpenAI) -> None:
        try:
            raw = await api.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Fake-Behavior": "slow:20"}
            )
        except openai.APIConnectionError:
            return  # accepted by the killed worker: never answered
        answered.append(raw.headers["Helicone-Id"])

    async with instance.client(http_client=one_connection_each()) as api:
        load = [asyncio.create_task(one(api)) for _ in range(200)]
        while len(answered) < 60:
            await asyncio.sleep(0.01)
        os.kill(victim["pid"], signal.SIGKILL)
        await asyncio.gather(*load)
    await all_workers_up(http, instance, 2)
    instance.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(instance.proc.wait(), 60) == 0
    with sqlite3.connect(instance.db) as conn:
        logged = {row[0] for row in conn.execute("SELECT request_id FROM requests")}
    assert set(answered) <= logged  # what the killed worker held came back from its spool at its restart
    assert (spool / "worker-1").is_dir()  # worker 1's own spool, beside worker 0's files


async def test_a_restart_that_cannot_reach_the_store_is_retried_not_fatal(
    runtime_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Crashes once, then exits as if the store were unreachable: the other workers must not be stopped for it."""
    marker = tmp_path / "crashed-once"
    script = f"import pathlib, sys; m = pathlib.Path({str(marker)!r}); sys.exit(3 if m.exists() else m.touch() or 1)"
    sock = listening_socket("127.0.0.1", 0)
    supervisor = Supervisor(1, [sys.executable, "-c", script], sock, runtime_dir)
    caplog.set_level(logging.INFO, logger="feedgate.workers")
    running = asyncio.create_task(supervisor.run())
    try:
        while supervisor.restarts[0] < 2 and not running.done():
            await asyncio.sleep(0.05)
    finally:
        supervisor.stop()
        code = await asyncio.wait_for(running, 60)
        sock.close()
    assert code == 0 and supervisor.fatal is None
    assert "exited with code 3; restarting it in 0.5s (restart 2)" in caplog.text
