"""Several real ``feedgate serve`` processes on one PostgreSQL schema (and one Redis), as behind a load balancer.

Needs FEEDGATE_TEST_POSTGRES_URL; the shared-limit tests also need Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pgschema import Schemas
from serving import spawn
from serving import wait_ready as wait_process_ready
from tcpproxy import free_port
from test_shared_state import REDIS_URL, redis_or_skip

MESSAGES = [{"role": "user", "content": "Say hello"}]
CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


@dataclass
class Instance:
    url: str
    proc: asyncio.subprocess.Process
    log: Path  # the process's stderr: a file, so a chatty instance never blocks on a full pipe

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


async def wait_ready(instance: Instance) -> None:
    await wait_process_ready(instance.url, instance.proc)


Start = Callable[..., Awaitable[list[Instance]]]


@pytest.fixture
async def start(pg_schemas: Schemas, upstream_url: str, tmp_path: Path) -> AsyncIterator[Start]:
    """Start N instances together (so they also race to migrate a blank schema) on one fresh schema."""
    database_url = pg_schemas.new_url()
    async with AsyncExitStack() as stack:

        async def start_n(count: int = 2, **env: str) -> list[Instance]:
            instances = []
            for _ in range(count):
                port = free_port()
                log = tmp_path / f"instance-{port}.log"
                stderr = stack.enter_context(log.open("wb"))
                variables = {"FEEDGATE_DATABASE_URL": database_url, "FEEDGATE_OPENAI_BASE_URL": upstream_url, **env}
                proc = await spawn(variables, port, stdout=asyncio.subprocess.DEVNULL, stderr=stderr)
                stack.push_async_callback(_stop, proc)
                instances.append(Instance(f"http://127.0.0.1:{port}", proc, log))
            await asyncio.gather(*(wait_ready(instance) for instance in instances))
            return instances

        yield start_n


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
    await asyncio.wait_for(proc.wait(), 30)


async def chat(http: aiohttp.ClientSession, instance: Instance, **headers: str) -> aiohttp.ClientResponse:
    async with http.post(
        f"{instance.v1}/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-test", **headers}
    ) as r:
        await r.read()
        return r


async def feedback(http: aiohttp.ClientSession, instance: Instance, request_id: str) -> dict[str, Any]:
    async with http.get(f"{instance.v1}/request/{request_id}/feedback") as r:
        assert r.status == 200
        body: dict[str, Any] = (await r.json())["data"]
        return body


async def logged(http: aiohttp.ClientSession, instance: Instance, request_id: str, timeout: float = 10.0) -> None:
    """Wait until ``instance`` can read the request's row (whichever instance wrote it)."""
    for _ in range(int(timeout / 0.05)):
        async with http.get(f"{instance.v1}/request/{request_id}") as r:
            if r.status == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance.url} never saw request {request_id}")


async def test_feedback_through_one_instance_links_to_a_call_through_another(
    start: Start, http: aiohttp.ClientSession
) -> None:
    a, b = await start(2)

    # Before: B gets a rating for an ID nobody has logged yet, so it is pending; A then logs that request.
    early = f"early-{uuid.uuid4().hex[:8]}"
    async with http.post(f"{b.v1}/request/{early}/feedback", json={"rating": True}) as r:
        assert r.status == 202 and (await r.json())["data"] == {"status": "pending"}
    assert (await chat(http, a, **{"Helicone-Request-Id": early})).status == 200
    await logged(http, b, early)
    for instance in (a, b):
        state = await feedback(http, instance, early)
        assert state["rating"] is True and state["request_known"] is True

    # After: A's row is written, then B takes the rating for it as a known request.
    response = await chat(http, a)
    later = response.headers["Helicone-Id"]
    await logged(http, b, later)
    async with http.post(f"{b.v1}/request/{later}/feedback", json={"rating": False}) as r:
        assert r.status == 201
    for instance in (a, b):
        assert (await feedback(http, instance, later))["rating"] is False
    async with http.get(f"{a.v1}/request/{later}") as r:
        assert (await r.json())["data"]["attempts"] == 1


async def test_the_same_request_id_through_two_instances_is_numbered_once_per_attempt(
    start: Start, http: aiohttp.ClientSession
) -> None:
    a, b = await start(2)
    request_id = f"retry-{uuid.uuid4().hex[:8]}"
    for instance in (a, b, a):  # an SDK retry that a load balancer sent elsewhere
        assert (await chat(http, instance, **{"Helicone-Request-Id": request_id})).status == 200
    for _ in range(200):
        async with http.get(f"{b.v1}/request/{request_id}") as r:
            if r.status == 200 and (await r.json())["data"]["attempts"] == 3:
                break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("three attempts were not all logged")
    assert (await r.json())["data"]["attempt"] == 3


async def test_sigterm_to_one_instance_under_load_loses_none_of_its_rows(
    start: Start, http: aiohttp.ClientSession
) -> None:
    a, b = await start(2)
    answered: list[str] = []

    async def one() -> None:
        try:
            response = await chat(http, a, **{"X-Fake-Behavior": "slow:20"})
        except aiohttp.ClientError:
            return  # sent after A stopped listening: never answered, so nothing to log
        if response.status == 200:
            answered.append(response.headers["Helicone-Id"])

    load = [asyncio.create_task(one()) for _ in range(300)]
    while len(answered) < 50:
        await asyncio.sleep(0.01)
    a.proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*load)
    await asyncio.wait_for(a.proc.wait(), 30)
    stderr = a.log.read_text()
    assert a.proc.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert len(answered) >= 50
    # B reads every row A answered: A drained its queue into the shared database before it exited.
    missing = []
    for request_id in answered:
        async with http.get(f"{b.v1}/request/{request_id}") as r:
            if r.status != 200:
                missing.append(request_id)
    assert missing == []


async def limited(http: aiohttp.ClientSession, instance: Instance, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}", "Helicone-RateLimit-Policy": "3;w=60"}
    async with http.post(f"{instance.v1}/chat/completions", json=CHAT, headers=headers) as r:
        await r.read()
        return r.status


async def test_a_rate_limit_holds_across_instances_sharing_redis(start: Start, http: aiohttp.ClientSession) -> None:
    await redis_or_skip()
    a, b = await start(2, FEEDGATE_REDIS_URL=REDIS_URL)
    key = f"sk-{uuid.uuid4().hex}"  # a fresh tenant: the counter starts at zero
    statuses = [await limited(http, instance, key) for instance in (a, b, a, b, a)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_without_redis_each_instance_counts_on_its_own(start: Start, http: aiohttp.ClientSession) -> None:
    a, b = await start(2)
    key = f"sk-{uuid.uuid4().hex}"
    statuses = [await limited(http, instance, key) for instance in (a, b, a, b, a, b, a, b)]
    assert statuses == [200] * 6 + [429, 429]


async def test_a_feedback_token_from_one_instance_rates_on_another(start: Start, http: aiohttp.ClientSession) -> None:
    """Tokens are checked by their signature alone: any instance with the same secrets takes any instance's."""
    key = "fg-instances-key"
    a, b = await start(2, FEEDGATE_API_KEYS=key, FEEDGATE_FEEDBACK_TOKEN_SECRETS="shared-token-secret-" + "s" * 32)
    auth = {"Authorization": f"Bearer {key}"}
    response = await chat(http, a, **{"Helicone-Auth": f"Bearer {key}"})
    request_id, token = response.headers["Helicone-Id"], response.headers["Feedgate-Feedback-Token"]
    async with http.post(
        f"{b.v1}/request/{request_id}/feedback",
        json={"rating": False, "comment": "rated on B"},
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status in (201, 202), await r.text()
    session_id = f"ticket-{uuid.uuid4().hex[:8]}"
    async with http.post(f"{b.v1}/feedback-tokens", json={"session_ids": [session_id]}, headers=auth) as r:
        session_token = (await r.json())["data"]["session_tokens"][session_id]
    async with http.post(
        f"{a.v1}/session/{session_id}/feedback",
        json={"rating": True},
        headers={"Authorization": f"Bearer {session_token}"},
    ) as r:
        assert r.status == 201, await r.text()
    for instance in (a, b):
        async with http.get(f"{instance.v1}/request/{request_id}/feedback", headers=auth) as r:
            state = (await r.json())["data"]
        assert (state["rating"], state["comment"]) == (False, "rated on B")
        async with http.get(f"{instance.v1}/session/{session_id}/feedback", headers=auth) as r:
            assert (await r.json())["data"]["rating"] is True
