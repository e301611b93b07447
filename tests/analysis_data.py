"""Log rows with exactly known values for the analysis tests, written through the gateway's own writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from feedgate.logrows.assemble import request_facts
from feedgate.logrows.build import fingerprint
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest, PutFeedback, PutScores, WriteOp
from feedgate.store.utc import utc_text

NOW = datetime.now(UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def openai_chat(model: str, system: str | None, question: str, answer: str) -> tuple[bytes, bytes]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    request = orjson.dumps({"model": model, "messages": messages})
    response = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        }
    )
    return request, response


def row(
    request_id: str,
    *,
    when: datetime,
    model: str = "gpt-4o",
    provider: str = "openai",
    user: str | None = None,
    duration: float | None = 100.0,
    cost: float | None = None,
    status: int = 200,
    properties: dict[str, str] | None = None,
    prompt_id: str | None = None,
    system: str | None = "You are helpful.",
    question: str = "Hi",
    answer: str = "Hello",
    session: str | None = None,
) -> InsertRequest:
    request_body, response_body = openai_chat(model, system, question, answer)
    values: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=request_id,
        datetime_utc=utc_text(when),
        provider=provider,
        method="POST",
        path="/v1/chat/completions",
        model=model,
        is_stream=0,
        status=status,
        duration_ms=duration,
        cost_usd=cost,
        user_id=user,
        session_id=session,
        prompt_id=prompt_id,
        prompt_fingerprint=fingerprint(system),
        messages_fingerprint=request_facts(request_body).messages_fingerprint,
        properties_json=orjson.dumps(properties or {}).decode(),
        request_body=request_body,
        response_body=response_body if status == 200 else b'{"error": {"message": "rate limited"}}',
        response_text=answer if status == 200 else None,
        body_bytes=len(request_body) + len(response_body),
    )
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS))


def rate(request_id: str, up: bool, comment: str | None = None, when: datetime | None = None) -> PutFeedback:
    moment = utc_text(when or NOW)
    return PutFeedback("request", request_id, "explicit", up, comment=comment, source="test", datetime_utc=moment)


def signal(request_id: str, name: str, positive: bool) -> PutFeedback:
    return PutFeedback("request", request_id, "implicit", positive, signal=name, source="test")


def score(request_id: str, name: str, value: float) -> PutScores:
    return PutScores(request_id, {name: (value, "float")})


def known_dataset() -> list[WriteOp]:
    """15 requests whose statistics are computed by hand in test_analysis_api.py.

    gpt-4o: a1..a10, durations 100..1000, cost 0.125 each; a1-a6 up, a7-a8 down; feature chat (a1-a5) or
    code; signals copied+ on a1, a2 and regenerated- on a9; helpfulness 0.5 (a1) and 1.0 (a2).
    claude-sonnet-4-5: b1..b5, durations 50..90, cost 0.25 except b5; b1 up, b2-b4 down; feature chat on
    b1-b2. Superseded attempts that must not count: a1's first try (429) and b1's first try on gpt-4o.
    """
    ops: list[WriteOp] = [
        row("a1", when=ago(hours=30), model="gpt-4o", user="u1", duration=5.0, status=429),
        row("b1", when=ago(hours=30), model="gpt-4o", user="u2", duration=7.0, cost=0.5, status=500),
    ]
    for i in range(1, 11):
        feature = "chat" if i <= 5 else "code"
        ops.append(
            row(
                f"a{i}",
                when=ago(hours=20 - i),
                user="u1",
                duration=100.0 * i,
                cost=0.125,
                properties={"feature": feature},
                question=f"question {i}",
                answer=f"answer {i}",
                prompt_id="support",
            )
        )
    for i in range(1, 6):
        props = {"feature": "chat"} if i <= 2 else {}
        ops.append(
            row(
                f"b{i}",
                when=ago(hours=10 - i),
                model="claude-sonnet-4-5",
                provider="anthropic",
                user="u2",
                duration=40.0 + 10 * i,
                cost=0.25 if i < 5 else None,
                properties=props,
                question=f"claude {i}",
            )
        )
    ops += [rate(f"a{i}", True, comment="great" if i == 1 else None) for i in range(1, 7)]
    ops += [rate("a7", False, comment="wrong"), rate("a8", False)]
    ops += [rate("b1", True), rate("b2", False, comment="too long"), rate("b3", False), rate("b4", False)]
    ops += [signal("a1", "copied", True), signal("a2", "copied", True), signal("a9", "regenerated", False)]
    ops += [score("a1", "helpfulness", 0.5), score("a2", "helpfulness", 1.0)]
    return ops
