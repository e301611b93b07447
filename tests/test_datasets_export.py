"""Datasets (Helicone's API and filter snapshots) and exports in every format, checked line by line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from analysis_data import ago, known_dataset, rate, row
from conftest import Gateway, GatewayFactory
from feedgate.appkeys import WRITER
from feedgate.store.ops import WriteOp

ROLES = {"system", "user", "assistant", "tool"}


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as r:
        return r.status, await r.json()


async def export(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, list[Any]]:
    async with http.get(url, params=params) as r:
        raw = await r.read()
        if r.status != 200:
            return r.status, [orjson.loads(raw)]
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        return r.status, [orjson.loads(line) for line in raw.splitlines()]


async def traffic(gateway: Gateway, http: aiohttp.ClientSession) -> dict[str, str]:
    """Real proxied calls: OpenAI plain and streamed, Anthropic plain and streamed; each rated up."""
    ids: dict[str, str] = {}
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as oai:
        raw = await oai.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "echo: plain"}],
        )
        ids["openai"] = raw.headers["helicone-id"]
        stream = await oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "echo: streamed"}], stream=True
        )
        ids["openai-stream"] = stream.response.headers["helicone-id"]
        async for _chunk in stream:
            pass
    async with anthropic.AsyncAnthropic(base_url=f"{gateway.url}/anthropic", api_key="sk-ant", max_retries=0) as claude:
        raw_msg = await claude.messages.with_raw_response.create(
            model="claude-sonnet-4-20250514",
            max_tokens=50,
            system="Be kind.",
            messages=[{"role": "user", "content": "echo: hi"}],
        )
        ids["anthropic"] = raw_msg.headers["helicone-id"]
        async with claude.messages.stream(
            model="claude-sonnet-4-20250514", max_tokens=50, messages=[{"role": "user", "content": "echo: flowing"}]
        ) as events:
            ids["anthropic-stream"] = events.response.headers["helicone-id"]
            await events.get_final_message()
    await gateway.settled()
    for request_id in ids.values():
        status, _ = await call(http, "POST", f"{gateway.v1}/request/{request_id}/feedback", {"rating": True})
        assert status == 201
    return ids


async def logged_answer(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> str:
    status, body = await call(http, "GET", f"{gateway.v1}/request/{request_id}")
    assert status == 200
    text: str = body["data"]["response_text"]
    return text


async def test_every_format_line_by_line(make_combined: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_combined()
    ids = await traffic(gateway, http)
    answers = {await logged_answer(http, gateway, rid) for rid in ids.values()}
    assert answers == {"plain", "streamed", "hi", "flowing"}

    status, lines = await export(http, f"{gateway.v1}/export", format="openai-chat", rating="positive")
    assert status == 200 and len(lines) == 4
    for line in lines:
        messages = line["messages"]
        assert all(m["role"] in ROLES for m in messages) and messages[-1]["role"] == "assistant"
        assert messages[-2]["role"] == "user" and messages[-1]["content"] in answers
        assert messages[-1]["content"] == messages[-2]["content"].removeprefix("echo: ")  # the logged answer
    by_answer = {line["messages"][-1]["content"]: line["messages"] for line in lines}
    # Anthropic's system field becomes the same system message an OpenAI request carries.
    assert by_answer["hi"][0] == {"role": "system", "content": "Be kind."}
    assert by_answer["plain"][0] == {"role": "system", "content": "Be brief."}

    status, lines = await export(http, f"{gateway.v1}/export", format="few-shot")
    assert status == 200 and {(x["input"], x["output"]) for x in lines} == {
        ("echo: plain", "plain"),
        ("echo: streamed", "streamed"),
        ("echo: hi", "hi"),
        ("echo: flowing", "flowing"),
    }
    assert {x.get("system") for x in lines} == {"Be brief.", "Be kind.", None}

    status, lines = await export(http, f"{gateway.v1}/export", format="jsonl")
    assert status == 200 and {x["request_id"] for x in lines} == set(ids.values())
    assert all(x["feedback_rating"] is True for x in lines)
    streamed = next(x for x in lines if x["request_id"] == ids["openai-stream"])
    assert streamed["is_stream"] and streamed["response_body"]["choices"][0]["message"]["content"] == "streamed"


def pairs_data() -> list[WriteOp]:
    """The same question asked four times (two good answers, one bad, one unrated) and another one twice."""
    return [
        row("q1", when=ago(hours=5), question="capital of France?", answer="Paris."),
        row("q2", when=ago(hours=4), question="capital of France?", answer="Lyon, I think."),
        row("q3", when=ago(hours=3), question="capital of France?", answer="It is Paris."),
        row("q4", when=ago(hours=2), question="capital of France?", answer="France has no capital."),
        row("r1", when=ago(hours=2), question="2 + 2?", answer="4"),
        row("r2", when=ago(hours=1), question="2 + 2?", answer="4"),
        rate("q1", True),
        rate("q2", False),
        rate("q3", True),
        rate("r1", True),
        rate("r2", False),  # same answer both ways: no preference pair
    ]


async def test_dedup_and_preference_pairs(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await gateway.app[WRITER].submit(pairs_data())
    status, lines = await export(http, f"{gateway.v1}/export", format="openai-chat")
    assert status == 200 and len(lines) == 2  # identical inputs written once
    kept = {line["messages"][-2]["content"]: line["messages"][-1]["content"] for line in lines}
    assert kept == {"capital of France?": "Paris.", "2 + 2?": "4"}  # the best-rated, earliest answer

    status, lines = await export(http, f"{gateway.v1}/export", format="openai-preference")
    assert status == 200 and len(lines) == 1
    (pair,) = lines
    assert pair["input"]["messages"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "capital of France?"},
    ]
    assert pair["preferred_output"] == [{"role": "assistant", "content": "Paris."}]
    assert pair["non_preferred_output"] == [{"role": "assistant", "content": "Lyon, I think."}]

    status, lines = await export(http, f"{gateway.v1}/export", format="few-shot", rating="negative")
    assert [(x["input"], x["output"]) for x in lines] == [("capital of France?", "Lyon, I think."), ("2 + 2?", "4")]


async def test_split_is_deterministic_and_complete(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await gateway.app[WRITER].submit(known_dataset())
    url = f"{gateway.v1}/export"
    _, whole = await export(http, url, format="openai-chat")
    _, train = await export(http, url, format="openai-chat", split="0.8", seed="7", part="train")
    _, valid = await export(http, url, format="openai-chat", split="0.8", seed="7", part="validation")
    assert len(whole) == 15 and (len(train), len(valid)) == (12, 3)
    key = lambda line: orjson.dumps(line, option=orjson.OPT_SORT_KEYS)  # noqa: E731
    assert sorted(map(key, train + valid)) == sorted(map(key, whole))
    assert (await export(http, url, format="openai-chat", split="0.8", seed="7", part="train"))[1] == train
    assert (await export(http, url, format="openai-chat", split="0.8", seed="8", part="train"))[1] != train
    for params, fragment in (
        ({"format": "csv"}, "format must be one of"),
        ({"format": "jsonl", "split": "1.5"}, "split must be between 0 and 1"),
        ({"format": "jsonl", "split": "0.5", "part": "test"}, "part must be train or validation"),
        ({"format": "jsonl", "property.nothing": "x"}, "unknown property"),
    ):
        status, body = await export(http, url, **params)
        assert status == 400 and fragment in body[0]["error"]


async def test_helicone_dataset_api(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await gateway.app[WRITER].submit(known_dataset())
    base = f"{gateway.v1}/helicone-dataset"
    status, body = await call(http, "POST", base, {"datasetName": "good ones", "requestIds": ["a1", "a2", "a2"]})
    assert status == 200 and body["error"] is None
    dataset_id = body["data"]["datasetId"]
    status, body = await call(
        http, "POST", f"{base}/{dataset_id}/mutate", {"addRequests": ["b1"], "removeRequests": ["a2"]}
    )
    assert status == 200
    status, body = await call(http, "POST", f"{base}/{dataset_id}/query", {"offset": 0, "limit": 10})
    assert [r["origin_request_id"] for r in body["data"]] == ["a1", "b1"]
    assert body["data"][0]["dataset_id"] == dataset_id and body["data"][0]["signed_url"] == "/v1/request/a1"
    assert (await call(http, "POST", f"{base}/{dataset_id}/count"))[1]["data"] == 2
    status, body = await call(http, "POST", f"{base}/query", {})
    assert [(d["id"], d["name"], d["requests_count"], d["dataset_type"]) for d in body["data"]] == [
        (dataset_id, "good ones", 2, "helicone")
    ]
    _, lines = await export(http, f"{gateway.v1}/datasets/{dataset_id}/export", format="jsonl")
    assert [x["request_id"] for x in lines] == ["a1", "b1"]
    status, body = await call(http, "POST", base, {"datasetName": "x", "requestIds": ["a1", "never-logged"]})
    assert status == 404 and "never-logged" in body["error"]
    status, body = await call(http, "POST", base, {"datasetName": "x", "requestIds": ["bad id!"]})
    assert status == 400
    status, body = await call(http, "POST", base, {"requestIds": []})
    assert status == 400 and "datasetName" in body["error"]
    assert (await call(http, "POST", f"{base}/nope/count"))[0] == 404
    assert (await call(http, "POST", f"{base}/{dataset_id}/delete"))[0] == 200
    assert (await call(http, "POST", f"{base}/{dataset_id}/count"))[0] == 404


async def test_filter_snapshot_dataset(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    await gateway.app[WRITER].submit(known_dataset())
    body = {"name": "chat wins", "rating": "positive", "properties": {"feature": "chat"}, "since": "2d"}
    status, answer = await call(http, "POST", f"{gateway.v1}/datasets", body)
    assert status == 201, answer
    data = answer["data"]
    assert data["requests_count"] == 6 and data["dataset_type"] == "feedgate-filter"
    # A snapshot: later feedback does not change who is in it.
    await gateway.app[WRITER].submit([rate("a7", True)])
    _, lines = await export(http, f"{gateway.v1}/datasets/{data['datasetId']}/export", format="openai-chat")
    assert sorted(line["messages"][-1]["content"] for line in lines) == sorted(
        ["answer 1", "answer 2", "answer 3", "answer 4", "answer 5", "Hello"]
    )
    status, listed = await call(http, "GET", f"{gateway.v1}/datasets")
    assert [d["id"] for d in listed["data"]] == [data["datasetId"]]
    tree = {"request": {"model": {"equals": "claude-sonnet-4-5"}}}
    status, answer = await call(http, "POST", f"{gateway.v1}/datasets", {"name": "claude", "filter": tree})
    assert status == 201 and answer["data"]["requests_count"] == 5
    for bad, fragment in (
        ({"name": "x", "filter": {"request": {"colour": {"equals": "red"}}}}, "unknown column"),
        ({"name": "x", "rating": "great"}, "rating must be one of"),
        ({"name": "x", "properties": {"nothing": "x"}}, "unknown property"),
        ({"name": "x", "limit": 5}, "limit"),
    ):
        status, answer = await call(http, "POST", f"{gateway.v1}/datasets", bad)
        assert status == 400 and fragment in answer["error"], answer


async def test_cli_export_local_and_remote_agree(
    gateway: Gateway, http: aiohttp.ClientSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from feedgate.cli import main

    await gateway.app[WRITER].submit([*known_dataset(), *pairs_data()])
    db = ["--database-url", gateway.settings.database.url]
    for fmt in ("openai-chat", "openai-preference", "few-shot", "jsonl"):
        local, remote = tmp_path / f"local-{fmt}.jsonl", tmp_path / f"remote-{fmt}.jsonl"
        args = ["export", "--format", fmt, "--model", "gpt-4o"]
        assert await asyncio.to_thread(main, [*args, "-o", str(local), *db]) == 0
        assert await asyncio.to_thread(main, [*args, "-o", str(remote), "--url", gateway.url]) == 0
        assert local.read_bytes() == remote.read_bytes() and local.read_bytes()
        for line in local.read_bytes().splitlines():
            orjson.loads(line)
    out = tmp_path / "split.jsonl"
    code = await asyncio.to_thread(
        main, ["export", "--format", "openai-chat", "--split", "0.8", "--seed", "3", "-o", str(out), *db]
    )
    assert code == 0 and "lines to" in capsys.readouterr().err
    train, valid = (tmp_path / "split.train.jsonl").read_bytes(), (tmp_path / "split.validation.jsonl").read_bytes()
    assert len(train.splitlines()) + len(valid.splitlines()) == 17
    code = await asyncio.to_thread(
        main,
        ["export", "--format", "openai-chat", "--split", "0.8", "--seed", "3", "-o", str(out), "--url", gateway.url],
    )
    assert code == 0 and (tmp_path / "split.train.jsonl").read_bytes() == train
    assert await asyncio.to_thread(main, ["export", "--format", "jsonl", "--dataset", "nope", "-o", str(out), *db]) == 2
