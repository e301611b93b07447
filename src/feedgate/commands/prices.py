"""``feedgate prices``: the model price table in effect (shipped file plus the config's ``prices``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import orjson

from feedgate.config import Settings
from feedgate.logrows.pricing import Price, PriceTable

_HEADER = ("provider", "model", "input", "output", "cache_read", "cache_write")


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prices", help="list model prices (USD per 1M tokens) used for cost_usd"
    )
    common(parser)
    parser.add_argument(
        "models", nargs="*", metavar="MODEL", help="show how these model names resolve (e.g. gpt-4o-2024-11-20)"
    )
    parser.add_argument("--provider", help="only this provider's models")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _row(provider: str, model: str, price: Price) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "input": price.input,
        "output": price.output,
        "cache_read": price.cache_read,
        "cache_write": price.cache_write,
    }


def table_rows(table: PriceTable, models: list[str], provider: str | None) -> list[dict[str, Any]]:
    """The rows to show: the whole table (optionally one provider), or how each given name resolves."""
    if not models:
        return [_row(p, m, price) for p, m, price in table.rows() if provider is None or p == provider]
    rows = []
    providers = {name.lower(): p for p, name, _ in table.rows()}
    for model in models:
        found = table.lookup(model)
        if found is None:
            rows.append({"provider": None, "model": model, "matched": None})
            continue
        matched, price = found
        rows.append({**_row(providers[matched.lower()], model, price), "matched": matched})
    return rows


def _print_table(rows: list[dict[str, Any]], resolve: bool) -> None:
    header = (*_HEADER, "matched") if resolve else _HEADER
    lines = [list(header)]
    for row in rows:
        if resolve and row["matched"] is None:
            lines.append(["-", row["model"], "-", "-", "-", "-", "none: unknown model, cost_usd stays null"])
            continue
        cells = [row["provider"], row["model"], *(_money(row[k]) for k in _HEADER[2:])]
        lines.append(cells + ([row["matched"]] if resolve else []))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def run(args: argparse.Namespace, settings: Settings) -> int:
    table = PriceTable.load({model: price.model_dump() for model, price in settings.prices.items()})
    rows = table_rows(table, args.models, args.provider)
    if args.json:
        print(orjson.dumps({"updated": table.updated, "source": table.source, "prices": rows}).decode())
    else:
        _print_table(rows, resolve=bool(args.models))
        if not args.models:
            print(f"\n{len(rows)} models, USD per 1M tokens; shipped table updated {table.updated or '?'}")
    # Exit 1 when a name asked about has no price, so scripts can check a model before relying on its cost.
    return 1 if any(row.get("matched", "") is None for row in rows) else 0
