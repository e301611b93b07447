"""``feedgate export --format F [filters | --dataset ID] -o FILE [--split 0.9 --seed N]``.

Formats: openai-chat, openai-preference, few-shot, jsonl (full rows). With ``--split`` two files are
written next to FILE: ``NAME.train.jsonl`` and ``NAME.validation.jsonl``. A progress bar goes to stderr
when it is a terminal; a one-line summary always does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

from feedgate.analysis.export_run import FORMATS, Export, Spool, check_split
from feedgate.analysis.reports import require_properties
from feedgate.analysis.selection import parse_selection
from feedgate.commands.client import Local, Remote, add_filter_flags, backend, filter_pairs, guarded
from feedgate.config import Settings
from feedgate.errors import CommandError
from feedgate.store.datasets import list_datasets
from feedgate.store.filters import compile_filter
from feedgate.store.reads.export_rows import dataset_scope


def add_commands(subparsers: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = subparsers.add_parser("export", help="write logged requests as training data (JSONL)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what each line is")
    parser.add_argument("-o", "--output", required=True, help="file to write ('-' for stdout)")
    parser.add_argument("--dataset", help="export this dataset instead of a filter")
    parser.add_argument("--split", type=float, help="training share, e.g. 0.9: writes NAME.train and NAME.validation")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for --split")
    parser.add_argument("--url", help="export through a running gateway (e.g. http://127.0.0.1:8787)")
    parser.add_argument("--key", help="feedgate key for --url (default: $FEEDGATE_API_KEY)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    common(parser)
    add_filter_flags(parser)
    parser.set_defaults(run=run)


class Bar:
    """A progress line on stderr, redrawn at most ten times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.1 and done < total):
            return
        self.drawn = now
        share = done / total if total else 1.0
        rate = done / max(now - self.started, 1e-9)
        filled = int(share * 30)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} {done:,}/{total:,} rows {rate:,.0f}/s")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self.drawn:
            sys.stderr.write("\n")


def _paths(output: str) -> tuple[Path, Path]:
    path = Path(output)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}.train.jsonl"), path.with_name(f"{stem}.validation.jsonl")


def _open(output: str) -> AbstractContextManager[IO[bytes]]:
    return nullcontext(sys.stdout.buffer) if output == "-" else open(output, "wb")  # noqa: SIM115


async def _write(lines: AsyncIterator[bytes], out: IO[bytes]) -> int:
    count = 0
    buffer = bytearray()
    async for line in lines:
        buffer += line
        count += 1
        if len(buffer) >= 1 << 16:
            out.write(buffer)
            buffer.clear()
    out.write(buffer)
    return count


async def _local(args: argparse.Namespace, source: Local, bar: Bar) -> tuple[int, int, str]:
    store = source.store
    if args.dataset:
        if not await list_datasets(store, [args.dataset]):
            raise CommandError(f"no dataset with ID {args.dataset}")
        where = dataset_scope(args.dataset)
    else:
        selection, _ = parse_selection(filter_pairs(args))
        compiled = compile_filter(selection.tree(), store.dialect, every_row=True)
        await require_properties(store, compiled.properties)
        where = compiled.where
    export = Export(store, where, args.format, progress=bar)
    total = await export.plan()
    if args.split is None:
        with _open(args.output) as out:
            written = await _write(export.lines(), out)
        dropped = f" ({export.duplicates:,} repeated inputs dropped)" if export.duplicates else ""
        return total, written, f"{written:,} lines to {args.output}{dropped}"
    spool = Spool()
    try:
        written = await spool.fill(export.batches())
        train, validation = spool.parts(args.split, args.seed)
        for path, part in zip(_paths(args.output), (train, validation), strict=True):
            with open(path, "wb") as out:
                for line in spool.read(part):
                    out.write(line)
    finally:
        spool.close()
    train_path, valid_path = _paths(args.output)
    return total, written, f"{len(train):,} lines to {train_path}, {len(validation):,} to {valid_path}"


async def _remote(args: argparse.Namespace, source: Remote, bar: Bar) -> tuple[int, int, str]:
    path = f"/v1/datasets/{args.dataset}/export" if args.dataset else "/v1/export"
    params = [("format", args.format), *([] if args.dataset else filter_pairs(args))]
    if args.split is None:
        total, lines = await source.stream(path, params)
        with _open(args.output) as out:
            written = await _write(lines, out)
        return total, written, f"{written:,} lines to {args.output}"
    written, parts = 0, []
    for part, target in zip(("train", "validation"), _paths(args.output), strict=True):
        split = [("split", str(args.split)), ("seed", str(args.seed)), ("part", part)]
        total, lines = await source.stream(path, [*params, *split])
        with open(target, "wb") as out:
            count = await _write(lines, out)
        written += count
        parts.append(f"{count:,} lines to {target}")
    return total, written, ", ".join(parts)


def run(args: argparse.Namespace, settings: Settings) -> int:
    def work() -> int:
        if args.split is not None:
            check_split(args.split)
            if args.output == "-":
                raise CommandError("--split writes two files: give -o a file name")
        bar = Bar(sys.stderr.isatty() and not args.no_progress)
        started = time.monotonic()

        async def go() -> tuple[int, int, str]:
            async with backend(args, settings) as source:
                if isinstance(source, Remote):
                    return await _remote(args, source, bar)
                return await _local(args, source, bar)

        total, _written, summary = asyncio.run(go())
        bar.finish()
        took = time.monotonic() - started
        print(f"feedgate: read {total:,} requests in {took:.1f}s, wrote {summary}", file=sys.stderr)
        return 0

    return guarded(work)
