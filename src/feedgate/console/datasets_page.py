"""``/console/datasets``: datasets made from a request-list filter, their previews and their downloads.

A dataset made here is the API's filter snapshot (``POST /v1/datasets``): the requests matching the request
list's filter now, kept as a list of IDs, with the filter's query string in its ``meta`` so the list can be
opened again. The page lists every live dataset (size, created, filter); one dataset's page previews the first
lines of each export format and downloads any of them as a file, whole or one side of a train/validation
split, through the API's own export (``api/datasets.stream_export``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from feedgate.analysis.export_run import FORMATS, Export
from feedgate.api.datasets import stream_export
from feedgate.api.results import commit
from feedgate.appkeys import STORE
from feedgate.console.filters import parse_filters
from feedgate.console.pages import render, see_other
from feedgate.errors import FilterError, NotFound
from feedgate.request_ids import check_id
from feedgate.store.datasets import list_datasets
from feedgate.store.filters import compile_filter
from feedgate.store.ops import CreateDataset
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import dataset_scope

PREVIEW_LINES = 3
MAX_NAME = 200


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    meta = orjson.loads(row["meta_json"]) if row["meta_json"] else {}
    return {
        "id": row["id"],
        "name": row["name"],
        "created_utc": row["created_utc"],
        "requests": row["requests_count"],
        "origin": row["origin"],
        "list_query": meta.get("console_filter") if isinstance(meta, dict) else None,
        "filter_json": row["filter_json"],
    }


async def _dataset(store: Store, dataset_id: str) -> dict[str, Any]:
    rows = await list_datasets(store, [check_id(dataset_id, "dataset ID")])
    if not rows:
        raise NotFound(f"There is no dataset with ID {dataset_id}.")
    return _shown(rows[0])


async def datasets_page(request: web.Request) -> web.Response:
    if request.query:
        raise FilterError("The datasets page takes no parameters.")
    rows = await list_datasets(request.config_dict[STORE])
    return render(request, "datasets.html", {"title": "Datasets", "datasets": [_shown(row) for row in rows]})


async def create_dataset(request: web.Request) -> web.Response:
    """Snapshot the requests the posted request-list filter (``list``, a query string) selects, as ``name``."""
    form = await request.post()
    name, list_query = form.get("name"), form.get("list")
    if not isinstance(name, str) or not name.strip():
        raise FilterError("A dataset needs a name.")
    if len(name.strip()) > MAX_NAME or "\x00" in name:
        raise FilterError(f"A dataset's name is at most {MAX_NAME} characters, without NUL.")
    query = list_query if isinstance(list_query, str) else ""
    chosen, _ = parse_filters(parse_qsl(query[:8000]))
    store = request.config_dict[STORE]
    compile_filter(chosen.tree, store.dialect)  # a bad filter is a message now, not an error in the writer
    dataset_id = str(uuid.uuid4())
    meta = orjson.dumps({"console_filter": chosen.query(), "made_in": "console"}).decode()
    op = CreateDataset(dataset_id, name.strip(), "filter", filter_tree=chosen.tree, meta_json=meta)
    await commit(request, op, timeout=60.0)
    return see_other(f"/console/datasets/{dataset_id}")


async def _preview(store: Store, dataset_id: str, fmt: str) -> tuple[int, list[str]]:
    export = Export(store, dataset_scope(dataset_id), fmt)
    total = await export.plan()
    lines: list[str] = []
    # An async generator: closed at once, so the store's streaming cursor is not left open for the GC to end.
    async with contextlib.aclosing(cast(AsyncGenerator[bytes, None], export.lines())) as stream:
        async for line in stream:
            lines.append(orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2).decode())
            if len(lines) >= PREVIEW_LINES:
                break
    return total, lines


async def dataset_page(request: web.Request) -> web.Response:
    store = request.config_dict[STORE]
    dataset = await _dataset(store, request.match_info["dataset_id"])
    previews = []
    for fmt in FORMATS:
        total, lines = await _preview(store, dataset["id"], fmt)
        previews.append({"format": fmt, "rows": total, "lines": lines})
    context = {"title": f"Dataset {dataset['name']}", "dataset": dataset, "previews": previews, "formats": FORMATS}
    return render(request, "dataset.html", context)


async def download(request: web.Request) -> web.StreamResponse:
    """The dataset as a JSONL file: ``format``, and optionally ``split``, ``seed`` and ``part`` (as the API)."""
    store = request.config_dict[STORE]
    dataset = await _dataset(store, request.match_info["dataset_id"])
    allowed = {"format", "split", "seed", "part"}
    rest: dict[str, list[str]] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise FilterError(f"unknown parameter {name[:64]!r}; a download takes format, split, seed and part")
        if value.strip():
            rest.setdefault(name, []).append(value.strip())
    return await stream_export(request, store, dataset_scope(dataset["id"]), rest, dataset["name"])
