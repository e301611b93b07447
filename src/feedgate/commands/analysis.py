"""``feedgate stats``, ``feedgate insights`` and ``feedgate regressions``.

``regressions`` exits 1 when it finds any, so it can run from cron or CI; with ``analysis.webhook_url``
set it also POSTs each new regression once (``--no-notify`` to only look).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from feedgate.commands.client import (
    add_filter_flags,
    add_source_flags,
    backend,
    filter_pairs,
    guarded,
    num,
    pct,
    print_json,
    table,
)
from feedgate.config import Settings
from feedgate.store.reads.groups import DIMENSION_NAMES

EXIT_FOUND = 1


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    dims = ", ".join(DIMENSION_NAMES)
    stats = subparsers.add_parser("stats", help="quality per model, user, prompt, property, path, day or week")
    stats.add_argument("--by", default="model", metavar="DIMENSION", help=f"group by one of: {dims}")
    insights = subparsers.add_parser("insights", help="groups rated significantly worse than the rest")
    regressions = subparsers.add_parser("regressions", help="significant recent drops; exits 1 when any are found")
    for parser in (insights, regressions):
        parser.add_argument(
            "--by", action="append", default=[], metavar="DIMENSION", help=f"examine this dimension ({dims})"
        )
        parser.add_argument("--min-ratings", type=int, help="ratings a group needs (default analysis.min_ratings)")
        parser.add_argument("--alpha", type=float, help="significance level (default analysis.alpha)")
    insights.add_argument("--examples", type=int, default=3, help="thumbs-down examples per group")
    insights.add_argument("--top", type=int, default=20, help="show at most this many groups (--json shows all)")
    regressions.add_argument("--recent-days", type=float, help="recent window (default analysis.recent_days)")
    regressions.add_argument("--baseline-days", type=float, help="baseline window (default analysis.baseline_days)")
    regressions.add_argument(
        "--signal", action="append", default=[], help="implicit negative signal to watch (default: regenerated, ...)"
    )
    regressions.add_argument("--no-notify", action="store_true", help="do not POST new regressions to the webhook")
    for parser, run in ((stats, run_stats), (insights, run_insights), (regressions, run_regressions)):
        common(parser)
        add_source_flags(parser)
        add_filter_flags(parser)
        parser.set_defaults(run=run)


def _options(args: argparse.Namespace, names: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = [("by", by) for by in args.by]
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            pairs.append((name, str(value)))
    return pairs + [("signal", s) for s in getattr(args, "signal", [])]


def run_stats(args: argparse.Namespace, settings: Settings) -> int:
    async def work() -> dict[str, Any]:
        async with backend(args, settings) as source:
            return await source.stats([("group_by", args.by), *filter_pairs(args)])

    def show() -> int:
        report = asyncio.run(work())
        if args.json:
            print_json(report)
            return 0
        rows = [_stats_row(g, g["key"] if g["key"] is not None else "(none)") for g in report["groups"]]
        rows.append(_stats_row(report["overall"], "(all)"))
        headers = ("group", "requests", "rated", "up", "down", "positive", "95% interval", "cost $", "p50 ms", "p95 ms")
        print(f"by {report['group_by']}")
        print(table(headers, [r[0] for r in rows], (False, *([True] * 9))))
        extras = [f"  {label}: {text}" for r in rows for label, text in r[1]]
        if extras:
            print("\nsignals (+positive/-negative) and mean scores, never mixed with ratings:")
            print("\n".join(extras))
        return 0

    return guarded(show)


def _stats_row(g: dict[str, Any], label: str) -> tuple[list[str], list[tuple[str, str]]]:
    low, high = g["positive_rate_low"], g["positive_rate_high"]
    interval = "-" if low is None else f"{pct(low)}-{pct(high)}"
    cells = [
        str(label),
        num(g["requests"]),
        num(g["rated"]),
        num(g["positive"]),
        num(g["negative"]),
        pct(g["positive_rate"]),
        interval,
        num(g["cost_usd"], 4),
        num(g["duration_ms_p50"]),
        num(g["duration_ms_p95"]),
    ]
    extras = []
    signals = ", ".join(f"{name} +{c['positive']}/-{c['negative']}" for name, c in g["signals"].items())
    scores = ", ".join(f"{name} {value:.3g}" for name, value in g["scores"].items())
    if signals or scores:
        extras.append((str(label), "; ".join(part for part in (signals, scores) if part)))
    return cells, extras


def run_insights(args: argparse.Namespace, settings: Settings) -> int:
    async def work() -> dict[str, Any]:
        async with backend(args, settings) as source:
            return await source.insights([*_options(args, ("min_ratings", "alpha", "examples")), *filter_pairs(args)])

    def show() -> int:
        report = asyncio.run(work())
        if args.json:
            print_json(report)
            return 0
        overall = report["overall"]
        print(
            f"{num(overall['rated'])} ratings, {pct(overall['negative_rate'])} negative; "
            f"examined: {', '.join(report['dimensions'])} "
            f"(min {report['min_ratings']} ratings, alpha {report['alpha']})"
        )
        if not report["insights"]:
            print("no group is rated significantly worse than the rest")
            return 0
        for item in report["insights"][: args.top]:
            print(
                f"\n{item['dimension']} = {item['key']}: {pct(item['negative_rate'])} negative "
                f"({num(item['negative'])} of {num(item['rated'])}; 95% {pct(item['negative_rate_low'])}-"
                f"{pct(item['negative_rate_high'])}), {item['gap'] * 100:+.1f} points vs the rest, "
                f"p={item['p_value']:.2g}"
            )
            for example in item["examples"]:
                comment = f': "{example["comment"]}"' if example["comment"] else ""
                print(f"    {example['request_id']}{comment}")
        hidden = len(report["insights"]) - args.top
        if hidden > 0:
            print(f"\n... and {hidden} more (--top N or --json to see them)")
        return 0

    return guarded(show)


def run_regressions(args: argparse.Namespace, settings: Settings) -> int:
    async def work() -> dict[str, Any]:
        names = ("min_ratings", "alpha", "recent_days", "baseline_days")
        async with backend(args, settings) as source:
            return await source.regressions([*_options(args, names), *filter_pairs(args)], not args.no_notify)

    def show() -> int:
        report = asyncio.run(work())
        found = report["regressions"]
        if args.json:
            print_json(report)
            return EXIT_FOUND if found else 0
        recent, baseline = report["recent"], report["baseline"]
        print(
            f"recent {recent['from'][:16]} .. {recent['to'][:16]} vs baseline "
            f"{baseline['from'][:16]} .. {baseline['to'][:16]} (UTC)"
        )
        if not found:
            print(f"no significant regression in {', '.join(report['dimensions'])}")
            return 0
        rows = [
            [
                r["dimension"],
                r["key"],
                r["metric"],
                pct(r["baseline_rate"]),
                pct(r["recent_rate"]),
                f"{r['delta'] * 100:+.1f}",
                num(r["baseline_n"]),
                num(r["recent_n"]),
                f"{r['p_value']:.2g}",
            ]
            for r in found
        ]
        headers = ("dimension", "key", "metric", "baseline", "recent", "points", "n base", "n recent", "p")
        print(table(headers, rows, (False, False, False, True, True, True, True, True, True)))
        webhook = report.get("webhook")
        if webhook:
            print(f"\nwebhook: {webhook['sent']} new regression(s) sent, {len(webhook['errors'])} failed")
        return EXIT_FOUND

    return guarded(show)
