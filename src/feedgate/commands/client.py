"""What the analysis commands share: where answers come from (the store, or a gateway at ``--url``),
the flags that become filters, tables for people and JSON for scripts.

Both backends return the same dicts: the local one calls ``analysis.reports`` on a store it opens;
the remote one calls the gateway's API, which calls the same ``analysis.reports``. So ``--url`` changes
where the work happens, never the answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from feedgate.analysis.reports import (
    insights_report,
    notify_regressions,
    query_body,
    query_requests,
    regressions_report,
    stats_report,
)
from feedgate.analysis.request_rows import annotated
from feedgate.config import Settings
from feedgate.errors import CommandError, FeedgateError
from feedgate.store import make_store
from feedgate.store.protocol import Store
from feedgate.store.reads.requests import page_annotations

EXIT_ERROR = 2
Pairs = list[tuple[str, str]]


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="ask a running gateway (e.g. http://127.0.0.1:8787) instead of the store")
    parser.add_argument("--key", help="feedgate key for --url (default: $FEEDGATE_API_KEY)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")


def add_filter_flags(parser: argparse.ArgumentParser, rating: bool = True) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument("--since", help="ISO 8601 time or a span back from now: 30d, 12h, 2w")
    group.add_argument("--until", help="ISO 8601 time or a span back from now")
    group.add_argument("--model", help="only this model")
    group.add_argument("--user", help="only this user (Helicone-User-Id)")
    group.add_argument("--session", help="only this session (Helicone-Session-Id)")
    group.add_argument("--path", help="only this request path, e.g. /v1/chat/completions")
    group.add_argument("--prompt", help="only this prompt (Helicone-Prompt-Id or system prompt fingerprint)")
    group.add_argument(
        "--property", action="append", default=[], metavar="NAME=VALUE", help="only requests with this property"
    )
    group.add_argument(
        "--min-score", action="append", default=[], metavar="NAME=VALUE", help="only requests scored at least VALUE"
    )
    if rating:
        group.add_argument("--rating", choices=("positive", "negative", "unrated"), help="only these ratings")


def filter_pairs(args: argparse.Namespace) -> Pairs:
    """The filter flags as the API's query pairs (``selection.py``), so both backends parse them alike."""
    pairs: Pairs = []
    for name in ("since", "until", "model", "user", "session", "path", "prompt", "rating"):
        value = getattr(args, name, None)
        if value is not None:
            pairs.append((name, value))
    for flag, prefix in (("property", "property."), ("min_score", "min_score.")):
        for item in getattr(args, flag, []):
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise CommandError(f"--{flag.replace('_', '-')} {item}: expected NAME=VALUE")
            pairs.append((prefix + name, value))
    return pairs


class Local:
    """Answers from the store named by the settings (``database.url``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = make_store(settings)

    async def __aenter__(self) -> Local:
        await self.store.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    async def stats(self, pairs: Pairs) -> dict[str, Any]:
        return await stats_report(self.store, pairs, self.settings.analysis)

    async def insights(self, pairs: Pairs) -> dict[str, Any]:
        return await insights_report(self.store, self.settings.analysis, pairs)

    async def regressions(self, pairs: Pairs, notify: bool) -> dict[str, Any]:
        report = await regressions_report(self.store, self.settings.analysis, pairs)
        url = self.settings.analysis.webhook_url
        if url and notify and report["regressions"]:
            async with aiohttp.ClientSession() as session:

                async def submit(op: Any) -> None:
                    await self.store.apply([op])

                report["webhook"] = await notify_regressions(self.store, submit, report, url, session)
        return report

    async def requests(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return await query_requests(self.store, query_body(body))

    async def request(self, request_id: str) -> dict[str, Any]:
        attempts = await self.store.request_attempts(request_id)
        if not attempts:
            raise CommandError(f"no request with ID {request_id}")
        notes = await page_annotations(self.store, [request_id])
        return annotated(attempts[-1], notes[request_id])


class Remote:
    """Answers from a running gateway's API."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Remote:
        self.session = aiohttp.ClientSession(headers=self.headers)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(self, method: str, path: str, params: Pairs | None = None, body: Any = None) -> Any:
        assert self.session is not None
        try:
            async with self.session.request(
                method,
                self.url + path,
                params=params,
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": "application/json"} if body is not None else None,
            ) as answer:
                raw = await answer.read()
                return _result(answer.status, raw)
        except aiohttp.ClientError as exc:
            raise CommandError(f"cannot reach {self.url}: {exc}") from None

    async def stream(self, path: str, params: Pairs) -> tuple[int, AsyncIterator[bytes]]:
        """``(rows to read, lines)`` of a streamed export."""
        assert self.session is not None
        try:
            answer = await self.session.get(self.url + path, params=params)
        except aiohttp.ClientError as exc:
            raise CommandError(f"cannot reach {self.url}: {exc}") from None
        if answer.status != 200:
            raw = await answer.read()
            answer.release()
            _result(answer.status, raw)

        async def lines() -> AsyncIterator[bytes]:
            try:
                async for line in answer.content:
                    yield line
            finally:
                answer.release()

        return int(answer.headers.get("Feedgate-Export-Rows", "0")), lines()

    async def stats(self, pairs: Pairs) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/v1/feedback/stats", pairs)
        return result

    async def insights(self, pairs: Pairs) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/v1/feedback/insights", pairs)
        return result

    async def regressions(self, pairs: Pairs, notify: bool) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", "/v1/feedback/regressions", [*pairs, ("notify", "true" if notify else "false")]
        )
        return result

    async def requests(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call("POST", "/v1/request/query", body=body)
        return result

    async def request(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/v1/request/{request_id}")
        return result


def _result(status: int, raw: bytes) -> Any:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CommandError(f"gateway answered {status} with a body that is not JSON") from None
    if status >= 400 or not isinstance(body, dict):
        message = body.get("error") if isinstance(body, dict) else None
        if isinstance(message, dict):  # the proxy's OpenAI-shaped errors
            message = message.get("message")
        raise CommandError(f"gateway answered {status}: {message or raw[:200]!r}")
    return body.get("data")


def backend(args: argparse.Namespace, settings: Settings) -> Local | Remote:
    if args.url:
        return Remote(args.url, args.key or os.environ.get("FEEDGATE_API_KEY"))
    return Local(settings)


def guarded(work: Callable[[], int]) -> int:
    """Run a command body; user errors become one line on stderr and ``EXIT_ERROR``."""
    try:
        return work()
    except (CommandError, FeedgateError) as exc:
        print(f"feedgate: {exc}", file=sys.stderr)
        return EXIT_ERROR


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A plain aligned table: headers, a rule, rows. ``right`` marks numeric columns."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    align = right or [False] * len(headers)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a else c.ljust(w) for c, w, a in zip(cells, widths, align, strict=True)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"
