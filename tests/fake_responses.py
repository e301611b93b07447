"""The fake OpenAI upstream's Responses API: ``POST /v1/responses`` (JSON and SSE) and ``GET /v1/responses/{id}``.

It follows the wire format of ``openai.types.responses``: a ``response`` object with ``output`` items
(``reasoning`` with a summary, ``message`` with ``output_text`` parts, ``function_call``), and for a stream the
events ``response.created``, ``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``/``.done``, ``response.function_call_arguments.delta``/``.done``,
``response.reasoning_summary_text.delta``/``.done``, ``response.output_item.done`` and the terminal
``response.completed`` / ``response.incomplete`` / ``response.failed``, each as ``event: <type>`` and a
``data:`` line with a ``sequence_number``.

What it answers is decided by the request, as a real model's answer would be:

* text: the last user text (or function call output) after ``echo:``, else the default text; the input tokens
  are the words of ``instructions`` and every input item;
* ``tools`` with a function tool: a ``function_call`` item whose arguments follow the tool's schema;
* ``reasoning: {"summary": ...}``: a ``reasoning`` item with a summary (and reasoning tokens) before the answer;
* ``max_output_tokens`` smaller than the answer: the answer cut there, status ``incomplete`` with reason
  ``max_output_tokens``;
* ``background: true``: a ``queued`` response; ``GET /v1/responses/{id}`` then gives the finished one (every
  response is kept for it, as the API keeps them by default).

``X-Fake-Behavior`` switches (besides those of ``fakes.Behavior``): ``response-failed`` (status ``failed`` with
an error), ``stream-error`` (an ``error`` event instead of the terminal one), ``cut-stream`` (the stream ends
without a terminal event), ``answered-model:<name>`` (the model the answer names; default: the requested one).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from fakes import (
    DEFAULT_TEXT,
    Behavior,
    FakeUpstream,
    Json,
    _behavior,
    _body_json,
    _dumps,
    _fragments,
    _hex,
    _pieces,
    _prelude,
    _send_json,
    _send_sse,
    _text_of,
    _words,
    openai_error,
    sample_from_schema,
)

REASONING_SUMMARY = "The user wants a short answer; I will give it."
FAILED_ERROR = {"code": "server_error", "message": "The model failed to finish its answer."}


def _switches(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in request.headers.get("X-Fake-Behavior", "").split(","):
        name, _, arg = item.strip().partition(":")
        out[name] = arg
    return out


def _items(value: Any) -> list[Json]:
    """``input`` as a list of items: a string is one user message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value or [] if isinstance(item, dict)]


def _item_text(item: Json) -> str:
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    return _text_of(item.get("content"))


def _last_user(items: list[Json]) -> str:
    """The text the answer responds to: the last user message, or a tool's output sent back after it."""
    return next(
        (_item_text(i) for i in reversed(items) if i.get("role") == "user" or i.get("type") == "function_call_output"),
        "",
    )


def _function_tool(tools: Any) -> Json | None:
    return next((t for t in tools or [] if isinstance(t, dict) and t.get("type") == "function"), None)


def _usage(prompt: int, completion: int, cached: int, reasoning: int) -> Json:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


class _Answer:
    """One answer to a Responses request: the final response object, and the events that stream it."""

    def __init__(self, req: Json, b: Behavior, switches: dict[str, str]) -> None:
        self.req, self.switches = req, switches
        items = _items(req.get("input"))
        instructions = str(req.get("instructions") or "")
        prompt = _words(instructions) + sum(_words(_item_text(i)) for i in items)
        self.reasoning = isinstance(req.get("reasoning"), dict) and req["reasoning"].get("summary") is not None
        reasoning_tokens = 2 * _words(REASONING_SUMMARY) if self.reasoning else 0
        self.tool = _function_tool(req.get("tools"))
        last = _last_user(items)
        self.text = last[len("echo:") :].strip() if last.startswith("echo:") else DEFAULT_TEXT
        self.pieces = _pieces(self.text)
        self.status, self.incomplete = "completed", None
        limit = req.get("max_output_tokens")
        if self.tool is None and isinstance(limit, int) and limit < len(self.pieces):
            self.pieces = self.pieces[:limit]
            self.text = "".join(self.pieces)
            self.status, self.incomplete = "incomplete", {"reason": "max_output_tokens"}
        if "response-failed" in switches:
            self.status = "failed"
        if self.tool is not None:
            self.args = _dumps(sample_from_schema(self.tool.get("parameters")))
            completion = _words(str(self.tool.get("name"))) + len(_fragments(self.args))
        else:
            completion = len(self.pieces)
        self.usage = _usage(prompt, completion + reasoning_tokens, b.cache_tokens[0], reasoning_tokens)
        self.id = f"resp_{_hex(40)}"
        self.model = switches.get("answered-model") or str(req.get("model"))
        self.ids = {"rs": f"rs_{_hex(40)}", "msg": f"msg_{_hex(40)}", "fc": f"fc_{_hex(40)}"}
        self.call_id = f"call_{_hex(24)}"

    def output(self) -> list[Json]:
        out: list[Json] = []
        if self.reasoning:
            summary = [{"type": "summary_text", "text": REASONING_SUMMARY}]
            out.append({"id": self.ids["rs"], "type": "reasoning", "summary": summary})
        if self.status == "failed":
            return out
        if self.tool is not None:
            out.append(
                {
                    "id": self.ids["fc"],
                    "type": "function_call",
                    "status": "completed",
                    "arguments": self.args,
                    "call_id": self.call_id,
                    "name": self.tool.get("name"),
                }
            )
        else:
            part = {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}
            status = "incomplete" if self.status == "incomplete" else "completed"
            out.append(
                {"id": self.ids["msg"], "type": "message", "status": status, "role": "assistant", "content": [part]}
            )
        return out

    def response(self, status: str | None = None) -> Json:
        """The response object; ``status`` other than the final one gives the object as it was then."""
        final = status is None
        req = self.req
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": self.status if final else status,
            "background": bool(req.get("background")),
            "error": FAILED_ERROR if final and self.status == "failed" else None,
            "incomplete_details": self.incomplete if final else None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "model": self.model,
            "output": self.output() if final else [],
            "parallel_tool_calls": req.get("parallel_tool_calls", True),
            "previous_response_id": req.get("previous_response_id"),
            "reasoning": req.get("reasoning") or {"effort": None, "summary": None},
            "store": req.get("store", True),
            "temperature": req.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": req.get("tool_choice", "auto"),
            "tools": req.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.usage if final else None,
            "user": req.get("user"),
            "metadata": req.get("metadata") or {},
        }

    def events(self) -> list[Json]:
        events: list[Json] = [
            {"type": "response.created", "response": self.response("in_progress")},
            {"type": "response.in_progress", "response": self.response("in_progress")},
        ]
        for index, item in enumerate(self.output()):
            events += self._item_events(index, item)
        if "cut-stream" in self.switches:
            return events
        if "stream-error" in self.switches:
            events.append({"type": "error", "code": "server_error", "message": "stream broke", "param": None})
        else:
            terminal = {"completed": "response.completed", "incomplete": "response.incomplete"}
            events.append({"type": terminal.get(self.status, "response.failed"), "response": self.response()})
        return events

    def _item_events(self, index: int, item: Json) -> list[Json]:
        where: Json = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "reasoning":
            added = {**item, "summary": []}
            part: Json = {"type": "summary_text", "text": ""}
            text = item["summary"][0]["text"]
            deltas = [
                {"type": "response.reasoning_summary_text.delta", **where, "summary_index": 0, "delta": p}
                for p in _pieces(text)
            ]
            middle = [
                {"type": "response.reasoning_summary_part.added", **where, "summary_index": 0, "part": part},
                *deltas,
                {"type": "response.reasoning_summary_text.done", **where, "summary_index": 0, "text": text},
                {
                    "type": "response.reasoning_summary_part.done",
                    **where,
                    "summary_index": 0,
                    "part": {**part, "text": text},
                },
            ]
        elif kind == "function_call":
            added = {**item, "arguments": "", "status": "in_progress"}
            middle = [
                *(
                    {"type": "response.function_call_arguments.delta", **where, "delta": f}
                    for f in _fragments(item["arguments"])
                ),
                {"type": "response.function_call_arguments.done", **where, "arguments": item["arguments"]},
            ]
        else:
            added = {**item, "content": [], "status": "in_progress"}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            on: Json = {**where, "content_index": 0}
            middle = [
                {"type": "response.content_part.added", **on, "part": part},
                *({"type": "response.output_text.delta", **on, "delta": p, "logprobs": []} for p in self.pieces),
                {"type": "response.output_text.done", **on, "text": self.text, "logprobs": []},
                {"type": "response.content_part.done", **on, "part": item["content"][0]},
            ]
        return [
            {"type": "response.output_item.added", "output_index": index, "item": added},
            *middle,
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]


def _sse(events: list[Json]) -> list[bytes]:
    return [
        f"event: {e['type']}\ndata: {_dumps({**e, 'sequence_number': n})}\n\n".encode() for n, e in enumerate(events)
    ]


def add_responses_routes(fake: FakeUpstream, app: web.Application) -> None:
    """Add the Responses API to a fake OpenAI app; the responses made are kept in ``fake.responses``."""

    async def create(request: web.Request) -> web.StreamResponse:
        b = _behavior(request)
        if (err := await _prelude(fake, request, b, openai_error)) is not None:
            return err
        req = await _body_json(request)
        if not isinstance(req, dict) or not req.get("model") or "input" not in req:
            return await openai_error(request, 400, "'model' and 'input' are required", b)
        answer = _Answer(req, b, _switches(request))
        headers = {"x-request-id": f"req_{_hex(32)}"}
        fake.responses[answer.id] = answer.response()  # stored, as with the API's default store: true
        if req.get("background"):
            return await _send_json(request, answer.response("queued"), b, headers=headers)
        if req.get("stream"):
            return await _send_sse(request, _sse(answer.events()), b, headers, reset_after=4)
        return await _send_json(request, answer.response(), b, headers=headers)

    async def retrieve(request: web.Request) -> web.StreamResponse:
        b = _behavior(request)
        found = fake.responses.get(request.match_info["response_id"])
        if found is None:
            return await openai_error(request, 404, "No response found", b)
        return await _send_json(request, found, b, headers={"x-request-id": f"req_{_hex(32)}"})

    app.router.add_post("/v1/responses", create)
    app.router.add_get("/v1/responses/{response_id}", retrieve)
