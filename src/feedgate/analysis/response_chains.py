"""Responses API calls whose conversation or answer sits in other logged rows, made whole for export.

Two ways a Responses call's row does not hold its whole conversation:

* ``previous_response_id``: the provider keeps the earlier turns, and the request sends only the new one. The
  earlier turns are the logged calls that answered with that ID, and the ones before them, followed back as
  far as feedgate logged them (``EarlierTurn``, oldest first).
* ``background: true``: the create answers ``queued`` and the answer comes later, to a
  ``GET /v1/responses/{id}``. A rating usually names the create (the ID the app got first), so its answer is
  taken from the retrieval that saw the response finished; a retrieval's row, which has no request body, takes
  the create's.

Rows are looked up by response ID in batches (``store/reads/export_rows.rows_by_response_id``).
"""

from __future__ import annotations

from typing import Any

import orjson

from feedgate.analysis.chat_messages import JSON, EarlierTurn, ExportRow
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import rows_by_response_id

# Turns followed back at most: a loop of IDs, or a very long conversation, stops here.
MAX_TURNS = 200
_UNFINISHED = ("queued", "in_progress")


def _json(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(bytes(raw) if isinstance(raw, memoryview) else raw)
    except orjson.JSONDecodeError:
        return None


def _answer(row: dict[str, Any]) -> JSON | None:
    message = _json(row["response_json"] if row["is_stream"] else row["response_body"])
    return message if isinstance(message, dict) and message.get("object") == "response" else None


def _finished(message: JSON | None) -> bool:
    return isinstance(message, dict) and message.get("status") not in _UNFINISHED


class _Calls:
    """What the log holds for each response ID: the request that created it and its finished answer."""

    def __init__(self) -> None:
        self.request: dict[str, JSON] = {}
        self.answer: dict[str, JSON] = {}
        self.seen: set[str] = set()

    async def load(self, store: Store, response_ids: set[str]) -> None:
        wanted = response_ids - self.seen
        if not wanted:
            return
        self.seen |= wanted
        for response_id, rows in (await rows_by_response_id(store, sorted(wanted))).items():
            for row in rows:
                body = _json(row["request_body"])
                if row["method"] == "POST" and isinstance(body, dict) and response_id not in self.request:
                    self.request[response_id] = body
                message = _answer(row)
                if _finished(message) and (row["status"] or 0) < 400:
                    assert message is not None
                    self.answer[response_id] = message  # the latest finished one


async def link_responses(store: Store, pairs: list[tuple[dict[str, Any], ExportRow]]) -> None:
    """Fill in the request, answer and earlier turns of the Responses rows among ``pairs`` (stored row, export row)."""
    mine = [(raw["response_id"], row) for raw, row in pairs if raw.get("api") == "responses" and raw.get("response_id")]
    if not mine:
        return
    calls = _Calls()
    await calls.load(
        store,
        {rid for rid, row in mine if not isinstance(row.request_json, dict) or not _finished(row.response_message)},
    )
    for response_id, row in mine:
        if not isinstance(row.request_json, dict) and response_id in calls.request:
            row.request_json = calls.request[response_id]
        if not _finished(row.response_message) and response_id in calls.answer:
            row.response_message = calls.answer[response_id]
    chains = {rid: _previous(row.request_json) for rid, row in mine}
    wanted = {prev for prev in chains.values() if prev is not None}
    for _ in range(MAX_TURNS):
        if not wanted - calls.seen:
            break
        await calls.load(store, wanted)
        wanted = {prev for rid in wanted if (prev := _previous(calls.request.get(rid))) is not None}
    for response_id, row in mine:
        row.earlier = _turns(calls, chains[response_id])


def _previous(request: JSON | None) -> str | None:
    prev = request.get("previous_response_id") if isinstance(request, dict) else None
    return prev if isinstance(prev, str) and prev else None


def _turns(calls: _Calls, previous: str | None) -> list[EarlierTurn]:
    turns: list[EarlierTurn] = []
    seen: set[str] = set()
    while previous is not None and previous not in seen and len(turns) < MAX_TURNS:
        seen.add(previous)
        request = calls.request.get(previous)
        if request is None:
            break  # the log does not reach further back
        turns.append(EarlierTurn(request, calls.answer.get(previous)))
        previous = _previous(request)
    turns.reverse()
    return turns
