"""Property-based: hostile calls to every non-proxied route, on SQLite and on PostgreSQL.

Whatever the JSON body, path IDs, query string and headers (``api_strategies.py``, drawn from
``/openapi.json``):

* no call answers 5xx or hangs (each has ``CALL_TIMEOUT_S``), and every refusal is Helicone's
  ``{"data": null, "error": "..."}`` with a message;
* after any accepted write, every read route still answers 2xx or 404, the JSONL export streams to its
  end, and every accepted manual log has its row.

Hypothesis runs in a worker thread and sends each call on the test's own loop, where the gateway runs.
Example counts are bounded (``EXAMPLES``) and there is no per-example deadline: the bound is the timeout
per call. Failures print the example and a ``@reproduce_failure`` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from api_strategies import KNOWN_DATASET, LOGGED_IDS, OPERATIONS, PROPERTY, Call, calls
from conftest import Gateway, GatewayFactory

if TYPE_CHECKING:
    from pgschema import Schemas  # a plugin (conftest.py): importing it here first would stop pytest rewriting it

CALL_TIMEOUT_S = 15.0
EXAMPLES = {"calls": 400, "writes_then_reads": 100}
SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
T = TypeVar("T")
TOKEN_SECRET = "a secret for the property suite's tokens"


@pytest.fixture(params=["sqlite", "postgres"])
async def any_gateway(request: pytest.FixtureRequest, make_gateway: GatewayFactory) -> Gateway:
    """A gateway with feedback tokens on (so the mint route mints), on SQLite, then on a fresh PostgreSQL schema."""
    feedback = {"token_secrets": [TOKEN_SECRET]}
    if request.param == "sqlite":
        return await make_gateway(feedback=feedback)
    schemas: Schemas = request.getfixturevalue("pg_schemas")
    return await make_gateway(database={"url": schemas.new_url()}, feedback=feedback)


class Runner:
    """Sends calls to one gateway from Hypothesis' thread, on the loop the gateway runs on."""

    def __init__(self, gateway: Gateway, http: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway, self.http, self.loop = gateway, http, loop
        self.datasets: list[str] = []

    def run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the gateway's loop and wait for it (each call in it has its own timeout)."""
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout=60 * CALL_TIMEOUT_S)

    async def send(self, method: str, url_path: str, **kw: Any) -> tuple[int, str, bytes]:
        url = URL(self.gateway.url + url_path, encoded=True)  # the path as drawn, percent-encoding and all
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                async with self.http.request(method, url, **kw) as r:
                    return r.status, r.content_type, await r.read()
        except TimeoutError:
            raise AssertionError(f"{method} {url_path} had no answer within {CALL_TIMEOUT_S} s") from None

    async def call(self, call: Call) -> tuple[int, Any]:
        url_path = call.url_path.replace(KNOWN_DATASET, self.datasets[-1])
        body = None if call.body is None else call.body.replace(KNOWN_DATASET.encode(), self.datasets[-1].encode())
        status, content_type, raw = await self.send(
            call.method, url_path, params=call.query, headers=call.headers, data=body
        )
        where = f"{call.method} {url_path} {call.query} {call.headers} {call.body[:300] if call.body else None!r}"
        assert status < 500, f"{status} from {where}: {raw[:300]!r}"
        answer = orjson.loads(raw) if content_type == "application/json" else raw
        if status >= 400:
            assert isinstance(answer, dict) and answer.get("data") is None, f"{status} not in Helicone's shape: {where}"
            assert isinstance(answer.get("error"), str) and answer["error"], where
        elif call.path.endswith("/delete") and self.datasets[-1] in url_path:
            await self.new_dataset()  # so the calls after this one still have a dataset to work on
        return status, answer

    async def new_dataset(self) -> None:
        body = {"datasetName": "fz", "requestIds": [LOGGED_IDS[0]]}
        async with self.http.post(f"{self.gateway.v1}/helicone-dataset", json=body) as r:
            self.datasets.append((await r.json())["data"]["datasetId"])

    async def reads_answer(self, logged: list[str], touched: set[str]) -> None:
        """Every read route answers 2xx or 404 with what is stored now; the export streams to its end.

        ``logged``: request IDs of accepted manual logs, each of which must have its row; ``touched``: the
        quoted IDs in the paths of accepted writes, read back beside the logged requests'.
        """
        await self.gateway.settled()
        for request_id in logged:  # accepted manual logs
            status, _type, raw = await self.send("GET", f"/v1/request/{request_id}")
            assert status == 200, f"accepted manual log {request_id} has no row: {raw[:200]!r}"
        ids = sorted({*LOGGED_IDS, *touched})
        reads: list[tuple[str, str, Any]] = [
            ("POST", "/v1/request/query", {"filter": "all", "limit": 1000}),
            ("POST", "/v1/request/query", {"filter": {"scores": {"stars": {"gte": 0}}}, "sort": {"latency": "asc"}}),
            ("POST", "/v1/request/count/query", {"filter": {"properties": {PROPERTY: {"equals": "x"}}}}),
            ("GET", "/v1/feedback/stats", None),
            ("GET", f"/v1/feedback/stats?group_by=property:{PROPERTY}&since=3650d", None),
            ("GET", "/v1/feedback/stats?group_by=day", None),
            ("GET", "/v1/feedback/insights?min_ratings=1", None),
            ("GET", "/v1/feedback/regressions?notify=false&min_ratings=1", None),
            ("GET", "/v1/datasets", None),
            ("POST", "/v1/helicone-dataset/query", None),
            *[("GET", f"/v1/request/{rid}{tail}", None) for rid in ids for tail in ("", "/feedback")],
            *[("GET", f"/v1/session/{rid}/feedback", None) for rid in ids],
            *[("GET", f"/v1/datasets/{ds}", None) for ds in self.datasets[-3:]],
            *[
                ("POST", f"/v1/helicone-dataset/{ds}/{read}", None)
                for ds in self.datasets[-3:]
                for read in ("query", "count")
            ],
        ]
        for fmt in ("jsonl", "openai-chat", "openai-preference", "few-shot"):
            reads.append(("GET", f"/v1/export?format={fmt}", None))
        reads += [("GET", f"/v1/datasets/{ds}/export?format=jsonl", None) for ds in self.datasets[-2:]]
        for method, path, body in reads:
            status, content_type, raw = await self.send(method, path, data=None if body is None else orjson.dumps(body))
            assert status in (200, 201, 404), f"{method} {path} answered {status} after accepted writes: {raw[:300]!r}"
            if content_type == "application/x-ndjson":
                for line in raw.splitlines():
                    orjson.loads(line)
            elif status == 200:
                orjson.loads(raw)


async def prepare(gateway: Gateway, http: aiohttp.ClientSession) -> Runner:
    runner = Runner(gateway, http, asyncio.get_running_loop())
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
    for rid in LOGGED_IDS:
        headers = {"Helicone-Request-Id": rid, "Helicone-Property-Feature": "x", "Helicone-Session-Id": rid}
        async with http.post(f"{gateway.v1}/chat/completions", json=chat, headers=headers) as r:
            assert r.status == 200
    await gateway.settled()
    await runner.new_dataset()
    return runner


async def test_no_call_answers_5xx_or_hangs(any_gateway: Gateway, http: aiohttp.ClientSession) -> None:
    runner = await prepare(any_gateway, http)

    @settings(SETTINGS, max_examples=EXAMPLES["calls"])
    @given(calls())
    def check(call: Call) -> None:
        runner.run(lambda: runner.call(call))

    await asyncio.to_thread(check)


async def test_after_any_accepted_write_every_read_still_answers(
    any_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    runner = await prepare(any_gateway, http)

    async def sequence(sent: list[Call]) -> None:
        logged: list[str] = []
        touched: set[str] = set()
        accepted = False
        for call in sent:
            status, answer = await runner.call(call)
            if not 200 <= status < 300:
                continue
            accepted = True
            if "{request_id}" in call.path or "{session_id}" in call.path:
                touched.add(call.url_path.split("/")[3])
            data = answer.get("data") if isinstance(answer, dict) else None
            if call.path.endswith("/log") and isinstance(data, dict):
                logged.append(data["request_id"])
            elif isinstance(data, dict) and "datasetId" in data:
                runner.datasets.append(data["datasetId"])
        if accepted:
            await runner.reads_answer(logged, touched)

    @settings(SETTINGS, max_examples=EXAMPLES["writes_then_reads"])
    @given(st.lists(calls(writing_operations()), min_size=1, max_size=4))
    def check(sent: list[Call]) -> None:
        runner.run(lambda: sequence(sent))

    await asyncio.to_thread(check)


def writing_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for method, path, op in OPERATIONS if method != "GET"]
