"""Exports larger than one read chunk (1,000 rows) and one write batch (256 KB): every row once and in export
order, repeated inputs dropped across chunks, and the same lines through the API, a split, and the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from analysis_data import ago, rate, row
from conftest import Gateway
from feedgate.appkeys import WRITER
from feedgate.cli import main
from feedgate.store.ops import WriteOp

ROWS = 2300
QUESTIONS = 500


def many_rows() -> list[WriteOp]:
    """Row ``i`` asks question ``i % 500`` and answers ``answer i`` at length, oldest first. Questions 0-99 get
    a thumbs-up on their fifth asking (rows 2000-2099, the third chunk); questions 0-49 a thumbs-down on their
    first (the first chunk)."""
    ops: list[WriteOp] = [
        row(
            f"r{i:04d}",
            when=ago(seconds=ROWS - i),
            question=f"question {i % QUESTIONS}",
            answer=f"answer {i} " + "and so on " * 30,
        )
        for i in range(ROWS)
    ]
    ops += [rate(f"r{2000 + q:04d}", True) for q in range(100)]
    ops += [rate(f"r{q:04d}", False) for q in range(50)]
    return ops


async def lines_of(http: aiohttp.ClientSession, url: str, **params: str) -> list[bytes]:
    async with http.get(url, params=params) as r:
        assert r.status == 200, await r.text()
        assert int(r.headers["Feedgate-Export-Rows"]) == ROWS
        return (await r.read()).splitlines()


async def test_an_export_of_many_chunks_keeps_every_row_in_order_and_drops_repeats_across_chunks(
    either_gateway: Gateway, http: aiohttp.ClientSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = either_gateway
    await gateway.app[WRITER].submit(many_rows())

    raw = await lines_of(http, f"{gateway.v1}/export", format="jsonl")
    assert sum(map(len, raw)) > 4 * 256 * 1024  # several batches
    full = [orjson.loads(line) for line in raw]
    assert [line["request_id"] for line in full] == [f"r{i:04d}" for i in range(ROWS)]  # oldest first
    assert full[2000]["feedback_rating"] is True and full[0]["feedback_rating"] is False
    assert full[1234]["response_body"]["choices"][0]["message"]["content"].startswith("answer 1234 and so on")

    chat = [orjson.loads(line) for line in await lines_of(http, f"{gateway.v1}/export", format="openai-chat")]
    answers = [line["messages"][-1]["content"].split(" and so on")[0] for line in chat]
    # Best-rated first: the thumbs-up answers (from the third chunk), then each other question's first asking;
    # a question's later askings, in any chunk, are repeats.
    assert answers == [f"answer {2000 + q}" for q in range(100)] + [f"answer {q}" for q in range(100, QUESTIONS)]

    parts = [
        await lines_of(http, f"{gateway.v1}/export", format="jsonl", split="0.8", seed="7", part=part)
        for part in ("train", "validation")
    ]
    assert len(parts[0]) == round(ROWS * 0.8) and sorted(parts[0] + parts[1]) == sorted(raw)

    out = tmp_path / "chat.jsonl"
    args = ["export", "--format", "openai-chat", "-o", str(out), "--database-url", gateway.settings.database.url]
    assert await asyncio.to_thread(main, args) == 0
    assert [orjson.loads(line) for line in out.read_bytes().splitlines()] == chat
    assert f"({ROWS - QUESTIONS:,} repeated inputs dropped)" in capsys.readouterr().err


async def test_an_export_selects_by_rating_the_rows_a_query_counts(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """Exports match a rating against the list of rated requests (compile_filter's every_row), queries one
    request at a time: the same rows either way."""
    gateway = either_gateway
    await gateway.app[WRITER].submit(many_rows())
    for rating, value, expected in (("positive", True, 100), ("negative", False, 50), ("unrated", None, ROWS - 150)):
        async with http.post(
            f"{gateway.v1}/request/count/query", json={"filter": {"feedback": {"rating": {"equals": value}}}}
        ) as r:
            assert (await r.json())["data"] == expected
        async with http.get(f"{gateway.v1}/export", params={"format": "jsonl", "rating": rating}) as r:
            assert int(r.headers["Feedgate-Export-Rows"]) == expected
            lines = [orjson.loads(line) for line in (await r.read()).splitlines()]
        assert len(lines) == expected and all(line["feedback_rating"] is value for line in lines)
    async with http.get(f"{gateway.v1}/export", params={"format": "openai-preference"}) as r:
        assert int(r.headers["Feedgate-Export-Rows"]) == 150  # the rated rows only
