"""``feedgate serve --log-format json``: every line on stderr is one JSON object, access lines per request."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
from openai.types.chat import ChatCompletionMessageParam

from otlp_receiver import otlp_receiver
from serving import wait_ready
from tcpproxy import free_port

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello in JSON logs"}]
SECRET = "sk-secret-for-json-logs"


async def test_serve_writes_one_json_object_per_line(tmp_path: Path, upstream_url: str) -> None:
    db = tmp_path / "json.db"
    async with otlp_receiver() as receiver:
        env = {
            **os.environ,
            "FEEDGATE_OPENAI_BASE_URL": upstream_url,
            "FEEDGATE_DATABASE_URL": f"sqlite:///{db}",
            "FEEDGATE_DATABASE_BATCH_WAIT_MS": "0",
            "FEEDGATE_TRACING_ENABLED": "true",
            "FEEDGATE_TRACING_ENDPOINT": receiver.url,
        }
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "feedgate", "serve", "--port", str(port), "--log-format", "json"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc)
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=SECRET, max_retries=0) as api:
            raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
            stream = await api.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
            async for _ in stream:
                pass
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/request/{raw.headers['helicone-id']}/feedback", json={"rating": True}) as r:
                assert r.status == 201
            async with http.get(f"{url}/nowhere") as r:
                assert r.status == 404
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()

    lines = [orjson.loads(line) for line in stderr.splitlines() if line.strip()]  # each line parses alone
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
        assert datetime.datetime.fromisoformat(line["time"]).tzinfo == datetime.UTC
    assert any(line["message"].startswith("listening on http://") for line in lines)
    access = {line["request_id"]: line for line in lines if line["logger"] == "feedgate.access"}
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = {row["request_id"]: dict(row) for row in conn.execute("SELECT * FROM requests")}
    assert len(rows) == 2
    for request_id, row in rows.items():
        logged: dict[str, Any] = access[request_id]
        assert logged["level"] == "INFO" and logged["status"] == 200 and logged["method"] == "POST"
        assert logged["path"] == "/v1/chat/completions" and logged["provider"] == "openai"
        assert logged["model"] == row["model"] and logged["trace_id"] == row["trace_id"]
        assert len(row["trace_id"]) == 32 and logged["duration_ms"] > 0
    feedback = next(line for line in access.values() if line["path"].endswith("/feedback"))
    assert feedback["status"] == 201 and "provider" not in feedback and len(feedback["trace_id"]) == 32
    assert next(line for line in access.values() if line["path"] == "/nowhere")["status"] == 404
    assert SECRET.encode() not in stderr and b"Say hello" not in stderr
