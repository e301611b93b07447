"""``feedgate requests``: list logged requests with filters, or ``feedgate requests show ID``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from feedgate.analysis.selection import parse_selection
from feedgate.commands.client import (
    add_filter_flags,
    add_source_flags,
    backend,
    filter_pairs,
    guarded,
    num,
    print_json,
    table,
)
from feedgate.config import Settings
from feedgate.errors import CommandError
from feedgate.store.filters import and_all


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = subparsers.add_parser("requests", help="list logged requests (filters as flags), or: requests show ID")
    parser.add_argument("action", nargs="*", metavar="show ID", help="show one request in full")
    parser.add_argument("--limit", type=int, default=20, help="rows per page (at most 1000)")
    parser.add_argument("--offset", type=int, default=0, help="rows to skip")
    parser.add_argument("--sort", default="created_at:desc", metavar="KEY[:asc|desc]", help="e.g. latency:desc")
    parser.add_argument("--filter", metavar="JSON", help="a Helicone filter tree, combined with the flags")
    common(parser)
    add_source_flags(parser)
    add_filter_flags(parser)
    parser.set_defaults(run=run)


def query_from_args(args: argparse.Namespace) -> dict[str, Any]:
    selection, _ = parse_selection(filter_pairs(args))
    leaves = [selection.tree()]
    if args.filter:
        try:
            leaves.append(orjson.loads(args.filter))
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"--filter is not valid JSON: {exc}") from None
    key, _, direction = args.sort.partition(":")
    return {
        "filter": and_all([leaf for leaf in leaves if leaf != "all"]),
        "limit": args.limit,
        "offset": args.offset,
        "sort": {key: direction or "desc"},
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    def show() -> int:
        if args.action:
            if len(args.action) != 2 or args.action[0] != "show":
                raise CommandError("usage: feedgate requests show ID")
            return _show_one(args, settings, args.action[1])
        body = query_from_args(args)

        async def work() -> list[dict[str, Any]]:
            async with backend(args, settings) as source:
                return await source.requests(body)

        rows = asyncio.run(work())
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print("no request matches")
            return 0
        print(
            table(
                ("time (UTC)", "request_id", "model", "user", "status", "ms", "tokens", "cost $", "rating", "answer"),
                [_cells(row) for row in rows],
                (False, False, False, False, True, True, True, True, False, False),
            )
        )
        return 0

    return guarded(show)


def _rating(value: bool | None) -> str:
    return "" if value is None else ("up" if value else "down")


def _cells(row: dict[str, Any]) -> list[str]:
    text = (row.get("response_text") or "").replace("\n", " ")
    return [
        str(row["request_created_at"])[:19].replace("T", " "),
        row["request_id"],
        row["model"] or "-",
        row["request_user_id"] or "-",
        str(row["response_status"]),
        num(row["delay_ms"]),
        num(row["total_tokens"]),
        num(row["cost"], 5),
        _rating(row.get("feedback_rating")),
        text[:40] + ("..." if len(text) > 40 else ""),
    ]


def _show_one(args: argparse.Namespace, settings: Settings, request_id: str) -> int:
    async def work() -> dict[str, Any]:
        async with backend(args, settings) as source:
            return await source.request(request_id)

    row = asyncio.run(work())
    if args.json:
        print_json(row)
        return 0
    fields = [
        ("request", row["request_id"]),
        ("time", row["request_created_at"]),
        ("model", f"{row['model']} via {row['provider']} {row['request_path']}"),
        ("status", f"{row['response_status']} in {num(row['delay_ms'])} ms (attempt {row['attempts']})"),
        ("tokens", f"{row['prompt_tokens']} in, {row['completion_tokens']} out; cost ${num(row['cost'], 6)}"),
        ("user", row["request_user_id"]),
        ("session", row["session_id"]),
        ("properties", ", ".join(f"{k}={v}" for k, v in row["properties"].items()) or "-"),
        ("rating", f"{_rating(row.get('feedback_rating')) or '-'}  {row.get('feedback_comment') or ''}".rstrip()),
        ("scores", ", ".join(f"{k}={v}" for k, v in (row.get("scores") or {}).items()) or "-"),
    ]
    for label, value in fields:
        print(f"{label:>10}  {value if value is not None else '-'}")
    question = _last_user_text(row.get("request_body"))
    if question:
        print(f"\n{'asked':>10}  {question}")
    if row.get("response_text"):
        print(f"{'answered':>10}  {row['response_text']}")
    return 0


def _last_user_text(body: Any) -> str | None:
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return None
