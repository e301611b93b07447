"""Fake OpenAI / Azure OpenAI / Anthropic upstreams speaking the providers' real wire formats.

Behaviour switches go in the ``X-Fake-Behavior`` request header, comma-separated:
``status:<code>``, ``slow:<ms>``, ``reset-mid-stream``, ``gzip``, ``fail-times:<n>:<code>`` (counted per
``X-Fake-Key`` header value), ``retry-after:<seconds>`` (adds ``Retry-After`` to error answers) and
``cache-tokens:<read>:<write>`` (Anthropic usage reports that many prompt-cache read / write tokens; the
Responses API that many cached tokens). The Responses API lives in ``fake_responses.py``, zstd and br answers in
``fake_encodings.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fake_encodings import encode_answer

DEFAULT_TEXT = "Hello from fake upstream"
EMBEDDING_DIMS = 8
OPENAI_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "gpt-3.5-turbo-instruct")
Json = dict[str, Any]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    peer: tuple[str, int] | None = None  # the caller's address: one per upstream connection

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class FakeUpstream:
    received: list[Received] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # fail-times counters per X-Fake-Key
    responses: dict[str, Json] = field(default_factory=dict)  # Responses API answers, by ID, for retrieval

    @property
    def last(self) -> Received:
        return self.received[-1]

    def clear(self) -> None:
        self.received.clear()
        self.failures.clear()


@dataclass
class Behavior:
    status: int | None = None
    slow_ms: int = 0
    reset: bool = False
    gzip: bool = False
    fail_times: tuple[int, int] | None = None
    retry_after: str | None = None
    cache_tokens: tuple[int, int] = (0, 0)

    @classmethod
    def parse(cls, value: str) -> Behavior:
        b = cls()
        for item in (p.strip() for p in value.split(",")):
            name, _, arg = item.partition(":")
            if name == "status":
                b.status = int(arg)
            elif name == "slow":
                b.slow_ms = int(arg)
            elif name == "reset-mid-stream":
                b.reset = True
            elif name == "gzip":
                b.gzip = True
            elif name == "fail-times":
                n, _, code = arg.partition(":")
                b.fail_times = (int(n), int(code or 500))
            elif name == "retry-after":
                b.retry_after = arg
            elif name == "cache-tokens":
                read, _, write = arg.partition(":")
                b.cache_tokens = (int(read), int(write or 0))
        return b


# ---------------------------------------------------------------- helpers shared by both providers
def _hex(n: int = 24) -> str:
    return uuid.uuid4().hex[:n]


def _words(text: str) -> int:
    return len(text.split())


def _text_of(content: Any) -> str:
    """Text of an OpenAI/Anthropic message content (a string or a list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _reply_text(last_user: str) -> str:
    return last_user[len("echo:") :].strip() if last_user.startswith("echo:") else DEFAULT_TEXT


def _pieces(text: str) -> list[str]:
    """Word-sized pieces that concatenate back to ``text`` (leading spaces kept, like real tokens)."""
    return re.findall(r"\s*\S+", text)


def _fragments(s: str, size: int = 6) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)]


def sample_from_schema(schema: Any) -> Any:
    """Deterministic value conforming to a (simple) JSON schema; used as fake tool arguments."""
    if not isinstance(schema, dict):
        return "fake"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return {k: sample_from_schema(v) for k, v in (schema.get("properties") or {}).items()}
    return {"array": [], "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "fake")


def fake_embedding(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """Deterministic float32-exact vector for ``text`` (what /v1/embeddings answers)."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw += [int.from_bytes(digest[i : i + 2], "big") / 32767.5 - 1.0 for i in range(0, 32, 2)]
        counter += 1
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *raw[:dims])))


def _abort(request: web.BaseRequest) -> None:
    """Drop the TCP connection abruptly (RST) without finishing the response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _send_json(
    request: web.Request, data: Any, b: Behavior, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    body = _dumps(data).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if b.gzip:
        body = gzip.compress(body)
        hdrs["Content-Encoding"] = "gzip"
    else:
        body = encode_answer(request, body, hdrs)
    if not b.reset:
        return web.Response(status=status, body=body, headers=hdrs)
    resp = web.StreamResponse(status=status, headers=hdrs)
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    _abort(request)
    return resp


async def _send_sse(
    request: web.Request, events: Sequence[bytes], b: Behavior, headers: dict[str, str], reset_after: int
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", **headers}
    )
    await resp.prepare(request)
    try:
        for i, event in enumerate(events):
            if b.reset and i == reset_after:
                _abort(request)
                return resp
            if i and b.slow_ms:
                await asyncio.sleep(b.slow_ms / 1000)
            await resp.write(event)
        await resp.write_eof()
    except ConnectionError:  # client went away mid-stream
        pass
    return resp


ErrorFn = Callable[[web.Request, int, str, Behavior], Awaitable[web.StreamResponse]]


async def _prelude(fake: FakeUpstream, request: web.Request, b: Behavior, error: ErrorFn) -> web.StreamResponse | None:
    """Apply slow/fail-times/status switches; returns an error response to send, if any."""
    if b.slow_ms:
        await asyncio.sleep(b.slow_ms / 1000)
    if b.fail_times is not None:
        key = request.headers.get("X-Fake-Key", "")
        fake.failures[key] = fake.failures.get(key, 0) + 1
        if fake.failures[key] <= b.fail_times[0]:
            return await error(request, b.fail_times[1], f"fake failure {fake.failures[key]}", b)
    if b.status is not None and b.status >= 400:
        return await error(request, b.status, f"fake status {b.status}", b)
    return None


def _behavior(request: web.Request) -> Behavior:
    return Behavior.parse(request.headers.get("X-Fake-Behavior", ""))


async def _body_json(request: web.Request) -> Any:
    body = await request.read()  # cached by aiohttp, cheap to call again
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _recorder(fake: FakeUpstream) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        body, parsed = await request.read(), await _body_json(request)
        fake.received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                parsed,
                request.transport.get_extra_info("peername") if request.transport is not None else None,
            )
        )
        return await handler(request)

    return record


# ---------------------------------------------------------------- OpenAI
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


async def openai_error(request: web.Request, status: int, message: str, b: Behavior) -> web.StreamResponse:
    kind, code = _OPENAI_ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    headers = {"x-request-id": f"req_{_hex(32)}"}
    if b.retry_after is not None:
        headers["Retry-After"] = b.retry_after
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return await _send_json(request, body, Behavior(gzip=b.gzip), status=status, headers=headers)


def _openai_usage(prompt: int, completion: int) -> Json:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _pick_tool(tools: Any, choice: Any) -> Json | None:
    funcs: list[Json] = [t["function"] for t in tools or [] if isinstance(t, dict) and t.get("type") == "function"]
    if not funcs or choice == "none":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return next((f for f in funcs if f.get("name") == choice["function"].get("name")), funcs[0])
    return funcs[0]


async def _chat(fake: FakeUpstream, request: web.Request, model: str | None = None) -> web.StreamResponse:
    b = _behavior(request)
    if (err := await _prelude(fake, request, b, openai_error)) is not None:
        return err
    req = await _body_json(request)
    if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or not (model or req.get("model")):
        return await openai_error(request, 400, "'model' and 'messages' are required", b)
    model = model or str(req["model"])
    msgs = [m for m in req["messages"] if isinstance(m, dict)]
    prompt_tokens = sum(_words(_text_of(m.get("content"))) for m in msgs)
    last_user = next((_text_of(m.get("content")) for m in reversed(msgs) if m.get("role") == "user"), "")
    tool = _pick_tool(req.get("tools"), req.get("tool_choice"))
    base = {
        "id": f"chatcmpl-{_hex(29)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake0001",
    }
    headers = {"x-request-id": f"req_{_hex(32)}"}
    if tool is not None:
        call_id, name = f"call_{_hex(24)}", str(tool.get("name"))
        args = _dumps(sample_from_schema(tool.get("parameters")))
        content, finish, completion_tokens = None, "tool_calls", _words(name) + len(_fragments(args))
    else:
        content, finish = _reply_text(last_user), "stop"
        completion_tokens = _words(content)
    usage = _openai_usage(prompt_tokens, completion_tokens)

    if not req.get("stream"):
        message: Json = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        if tool is not None:
            message["tool_calls"] = [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return await _send_json(request, {**base, "choices": [choice], "usage": usage}, b, headers=headers)

    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    base["object"] = "chat.completion.chunk"

    def chunk(delta: Json, finish_reason: str | None = None) -> Json:
        c = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        return {**c, "usage": None} if include_usage else c

    if tool is not None:
        first_call = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunks = [chunk({"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None})]
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in _fragments(args)]
    else:
        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        chunks += [chunk({"content": piece}) for piece in _pieces(content or "")]
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage})
    events = [f"data: {_dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
    return await _send_sse(request, events, b, headers, reset_after=3)


async def _completions(fake: FakeUpstream, request: web.Request) -> web.StreamResponse:
    b = _behavior(request)
    if (err := await _prelude(fake, request, b, openai_error)) is not None:
        return err
    req = await _body_json(request)
    if not isinstance(req, dict) or "prompt" not in req or not req.get("model"):
        return await openai_error(request, 400, "'model' and 'prompt' are required", b)
    prompt = req["prompt"][0] if isinstance(req["prompt"], list) and req["prompt"] else req["prompt"]
    text = _reply_text(prompt if isinstance(prompt, str) else "")
    usage = _openai_usage(_words(prompt if isinstance(prompt, str) else ""), _words(text))
    base = {
        "id": f"cmpl-{_hex(29)}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": str(req["model"]),
        "system_fingerprint": None,
    }
    headers = {"x-request-id": f"req_{_hex(32)}"}
    if not req.get("stream"):
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return await _send_json(request, {**base, "choices": [choice], "usage": usage}, b, headers=headers)
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    extra: Json = {"usage": None} if include_usage else {}
    chunks = [
        {**base, "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}], **extra}
        for p in _pieces(text)
    ]
    chunks.append({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}], **extra})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage})
    events = [f"data: {_dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
    return await _send_sse(request, events, b, headers, reset_after=2)


async def _embeddings(fake: FakeUpstream, request: web.Request, model: str | None = None) -> web.StreamResponse:
    b = _behavior(request)
    if (err := await _prelude(fake, request, b, openai_error)) is not None:
        return err
    req = await _body_json(request)
    if not isinstance(req, dict) or "input" not in req:
        return await openai_error(request, 400, "'input' is required", b)
    raw = req["input"]
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        raw = [raw]
    texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in raw]
    dims = int(req.get("dimensions") or EMBEDDING_DIMS)
    data = []
    for i, text in enumerate(texts):
        vec: Any = fake_embedding(text, dims)
        if req.get("encoding_format") == "base64":
            vec = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    tokens = sum(_words(t) for t in texts)
    body = {
        "object": "list",
        "data": data,
        "model": model or str(req.get("model")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return await _send_json(request, body, b, headers={"x-request-id": f"req_{_hex(32)}"})


def _model(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "system"}


async def _azure_guard(request: web.Request) -> web.Response | None:
    if "api-version" not in request.query:
        return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
    if not request.headers.get("api-key") and not request.headers.get("Authorization"):
        msg = (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
            "valid key for an active subscription and use a correct regional API endpoint for your resource."
        )
        return web.json_response({"error": {"code": "401", "message": msg}}, status=401)
    return None


def openai_app(fake: FakeUpstream, app: web.Application | None = None) -> web.Application:
    """OpenAI (/v1/...) and Azure OpenAI (/openai/deployments/{deployment}/...) routes, added to ``app``."""

    async def chat(request: web.Request) -> web.StreamResponse:
        return await _chat(fake, request)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await _completions(fake, request)

    async def embeddings(request: web.Request) -> web.StreamResponse:
        return await _embeddings(fake, request)

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [_model(m) for m in OPENAI_MODELS]})

    async def model(request: web.Request) -> web.StreamResponse:
        model_id = request.match_info["model"]
        if model_id not in OPENAI_MODELS:
            return await openai_error(request, 404, f"The model '{model_id}' does not exist", Behavior())
        return web.json_response(_model(model_id))

    async def azure_chat(request: web.Request) -> web.StreamResponse:
        return await _azure_guard(request) or await _chat(fake, request, request.match_info["deployment"])

    async def azure_embeddings(request: web.Request) -> web.StreamResponse:
        return await _azure_guard(request) or await _embeddings(fake, request, request.match_info["deployment"])

    app = web.Application(middlewares=[_recorder(fake)]) if app is None else app
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model}", model)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", azure_chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", azure_embeddings)
    from fake_responses import add_responses_routes  # here: fake_responses builds on this module

    add_responses_routes(fake, app)
    return app


# ---------------------------------------------------------------- Anthropic
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


async def anthropic_error(request: web.Request, status: int, message: str, b: Behavior) -> web.StreamResponse:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    request_id = f"req_{_hex(24)}"
    headers = {"request-id": request_id}
    if b.retry_after is not None:
        headers["Retry-After"] = b.retry_after
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return await _send_json(request, body, Behavior(gzip=b.gzip), status=status, headers=headers)


def _sse_event(data: Json) -> bytes:
    return f"event: {data['type']}\ndata: {_dumps(data)}\n\n".encode()


def anthropic_app(fake: FakeUpstream, app: web.Application | None = None) -> web.Application:
    """Anthropic Messages API fake (POST /v1/messages, /v1/messages/count_tokens), routes added to ``app``."""

    async def guard(request: web.Request) -> web.StreamResponse | Json:
        b = _behavior(request)
        # The real API takes x-api-key; anthropic SDK >= 2 sends `Authorization: Bearer` instead.
        if not request.headers.get("x-api-key") and not request.headers.get("Authorization"):
            return await anthropic_error(request, 401, "x-api-key header is required", b)
        if not request.headers.get("anthropic-version"):
            return await anthropic_error(request, 400, "anthropic-version: header is required", b)
        if (err := await _prelude(fake, request, b, anthropic_error)) is not None:
            return err
        req = await _body_json(request)
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or not req.get("model"):
            return await anthropic_error(request, 400, "model: Field required", b)
        return req

    def input_tokens(req: Json) -> int:
        msgs = [m for m in req["messages"] if isinstance(m, dict)]
        return _words(_text_of(req.get("system"))) + sum(_words(_text_of(m.get("content"))) for m in msgs)

    async def count_tokens(request: web.Request) -> web.StreamResponse:
        req = await guard(request)
        return req if isinstance(req, web.StreamResponse) else web.json_response({"input_tokens": input_tokens(req)})

    async def messages(request: web.Request) -> web.StreamResponse:
        req = await guard(request)
        if isinstance(req, web.StreamResponse):
            return req
        b = _behavior(request)
        if not isinstance(req.get("max_tokens"), int):
            return await anthropic_error(request, 400, "max_tokens: Field required", b)
        msgs = [m for m in req["messages"] if isinstance(m, dict)]
        last_user = next((_text_of(m.get("content")) for m in reversed(msgs) if m.get("role") == "user"), "")
        tools = [t for t in req.get("tools") or [] if isinstance(t, dict) and "name" in t]
        choice = req.get("tool_choice") or {}
        tool = None
        if tools and choice.get("type") != "none":
            tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
        if tool is not None:
            tool_input = sample_from_schema(tool.get("input_schema"))
            args = _dumps(tool_input)
            block: Json = {
                "type": "tool_use",
                "id": f"toolu_01{_hex(22)}",
                "name": tool["name"],
                "input": tool_input,
            }
            stop_reason, output_tokens = "tool_use", _words(str(tool["name"])) + len(_fragments(args))
        else:
            text = _reply_text(last_user)
            block = {"type": "text", "text": text}
            stop_reason, output_tokens = "end_turn", _words(text)
        usage = {
            "input_tokens": input_tokens(req),
            "cache_creation_input_tokens": b.cache_tokens[1],
            "cache_read_input_tokens": b.cache_tokens[0],
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        message = {
            "id": f"msg_01{_hex(22)}",
            "type": "message",
            "role": "assistant",
            "model": str(req["model"]),
            "content": [block],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": f"req_{_hex(24)}"}
        if not req.get("stream"):
            return await _send_json(request, message, b, headers=headers)

        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        if tool is not None:
            first: Json = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *_fragments(args)]]
        else:
            first = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        events: list[Json] = [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": first},
            {"type": "ping"},
            *({"type": "content_block_delta", "index": 0, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            {"type": "message_stop"},
        ]
        return await _send_sse(request, [_sse_event(e) for e in events], b, headers, reset_after=4)

    app = web.Application(middlewares=[_recorder(fake)]) if app is None else app
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    return app


def combined_app(fake: FakeUpstream) -> web.Application:
    """One app serving both the OpenAI/Azure and the Anthropic routes (one base URL for every provider)."""
    return anthropic_app(fake, openai_app(fake))


# ---------------------------------------------------------------- serving
async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (random port) in the running loop; yields the base URL."""
    runner, url = await _start(app)
    try:
        yield url
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_app_in_thread(app: web.Application) -> Iterator[str]:
    """Serve ``app`` from a background thread with its own loop (for blocking/sync clients)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-upstream", daemon=True)
    thread.start()
    try:
        runner, url = asyncio.run_coroutine_threadsafe(_start(app), loop).result(10)
        try:
            yield url
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
