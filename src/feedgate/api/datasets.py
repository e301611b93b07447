"""Datasets: Helicone's ``/v1/helicone-dataset`` API, feedgate's filter snapshots, and streamed exports.

* ``POST /v1/helicone-dataset`` ``{"datasetName", "requestIds", "meta"?}`` -> ``{"datasetId"}``; then
  ``.../{id}/mutate`` (``addRequests``/``removeRequests``), ``.../{id}/query`` (``offset``/``limit``),
  ``.../{id}/count``, ``.../{id}/delete`` and ``POST /v1/helicone-dataset/query`` (``datasetIds``?).
* ``POST /v1/datasets`` ``{"name", "filter"?: <Helicone filter tree>, "rating"?, "model"?, "user"?,
  "session"?, "path"?, "prompt"?, "since"?, "until"?, "properties"?: {..}, "min_scores"?: {..}}``
  snapshots the requests matching now; ``GET /v1/datasets`` and ``GET /v1/datasets/{id}`` read them back.
* ``GET /v1/datasets/{id}/export?format=...`` and ``GET /v1/export?format=...&<filters>`` stream JSONL
  (``split=0.9&seed=N&part=train|validation`` for one side of a train/validation split).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedgate.analysis.export_run import Export, Spool, check_format, check_split
from feedgate.analysis.reports import require_properties
from feedgate.analysis.selection import Selection, integer, number, parse_selection, single
from feedgate.api.fields import JsonObject, Text
from feedgate.api.results import commit, json_body, ok
from feedgate.appkeys import STORE
from feedgate.errors import BadRequest, NotFound, validation_message
from feedgate.request_ids import check_id
from feedgate.store.datasets import dataset_items, list_datasets
from feedgate.store.dialect import Frag
from feedgate.store.filters import and_all, compile_filter
from feedgate.store.ops import CreateDataset, DeleteDataset, MutateDataset
from feedgate.store.protocol import Store
from feedgate.store.reads.export_rows import dataset_scope

# A dataset ID in a path matches any one segment: see feedback.py.
routes = web.RouteTableDef()

log = logging.getLogger("feedgate.export")
MAX_IDS = 10_000
B = TypeVar("B", bound=BaseModel)
_FLUSH_BYTES = 1 << 16


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeliconeDatasetIn(_Body):
    datasetName: Text = Field(min_length=1, max_length=200)  # noqa: N815 (Helicone's names)
    requestIds: list[str] = Field(default_factory=list, max_length=MAX_IDS)  # noqa: N815
    meta: JsonObject | None = None


class MutateIn(_Body):
    addRequests: list[str] = Field(default_factory=list, max_length=MAX_IDS)  # noqa: N815
    removeRequests: list[str] = Field(default_factory=list, max_length=MAX_IDS)  # noqa: N815


class PageIn(_Body):
    offset: int = Field(0, ge=0, le=10_000_000)
    limit: int = Field(100, ge=1, le=1000)


class ListIn(_Body):
    datasetIds: list[str] | None = Field(None, max_length=1000)  # noqa: N815


class DatasetIn(Selection):
    """A dataset snapshot: a name, and a Helicone filter tree and/or the simple filters, as sent."""

    name: Text = Field(min_length=1, max_length=200)
    filter: Any = "all"


def _parse(model: type[B], raw: Any) -> B:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


async def _optional_body(request: web.Request) -> Any:
    """Helicone's clients send these bodies or not; an empty one means the defaults."""
    return await json_body(request) if (await request.read()).strip() else {}


async def _existing(store: Store, ids: list[str]) -> list[str]:
    """The IDs, checked and deduplicated; a 404 naming a few that were never logged."""
    ids = list(dict.fromkeys(check_id(rid) for rid in ids))
    found = await store.requests_exist(ids)
    missing = [rid for rid in ids if rid not in found]
    if missing:
        raise NotFound(f"no logged request with ID {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return ids


async def _dataset(store: Store, dataset_id: str) -> dict[str, Any]:
    rows = await list_datasets(store, [check_id(dataset_id, "dataset ID")])
    if not rows:
        raise NotFound(f"no dataset with ID {dataset_id[:80]}")
    return _shape(rows[0])


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": row["created_utc"],
        "meta": orjson.loads(row["meta_json"]) if row["meta_json"] else None,
        "organization": None,
        "dataset_type": "helicone" if row["origin"] == "helicone" else "feedgate-filter",
        "filter": orjson.loads(row["filter_json"]) if row["filter_json"] else None,
        "requests_count": row["requests_count"],
    }


@routes.post("/v1/helicone-dataset")
async def create_helicone(request: web.Request) -> web.Response:
    body = _parse(HeliconeDatasetIn, await json_body(request))
    store = request.app[STORE]
    ids = await _existing(store, body.requestIds)
    dataset_id = str(uuid.uuid4())
    meta = None if body.meta is None else orjson.dumps(body.meta).decode()
    await commit(request, CreateDataset(dataset_id, body.datasetName, "helicone", ids, meta_json=meta), timeout=60.0)
    return ok({"datasetId": dataset_id})


@routes.post("/v1/helicone-dataset/query")
async def query_helicone(request: web.Request) -> web.Response:
    body = _parse(ListIn, await _optional_body(request))
    ids = None if body.datasetIds is None else [check_id(rid, "dataset ID") for rid in body.datasetIds]
    rows = await list_datasets(request.app[STORE], ids)
    return ok([_shape(row) for row in rows])


@routes.post("/v1/helicone-dataset/{dataset_id:[^/]+}/mutate")
async def mutate(request: web.Request) -> web.Response:
    body = _parse(MutateIn, await json_body(request))
    store = request.app[STORE]
    dataset = await _dataset(store, request.match_info["dataset_id"])
    add = await _existing(store, body.addRequests)
    remove = [check_id(rid) for rid in body.removeRequests]
    await commit(request, MutateDataset(dataset["id"], add, remove), timeout=60.0)
    return ok(None)


@routes.post("/v1/helicone-dataset/{dataset_id:[^/]+}/query")
async def items(request: web.Request) -> web.Response:
    page = _parse(PageIn, await _optional_body(request))
    store = request.app[STORE]
    dataset = await _dataset(store, request.match_info["dataset_id"])
    rows = await dataset_items(store, dataset["id"], page.offset, page.limit)
    return ok(
        [
            {
                "id": row["id"],
                "origin_request_id": row["request_id"],
                "dataset_id": row["dataset_id"],
                "created_at": row["created_utc"],
                # Helicone signs an S3 URL to the stored bodies; here the bodies are one GET away.
                "signed_url": f"/v1/request/{row['request_id']}",
            }
            for row in rows
        ]
    )


@routes.post("/v1/helicone-dataset/{dataset_id:[^/]+}/count")
async def count(request: web.Request) -> web.Response:
    dataset = await _dataset(request.app[STORE], request.match_info["dataset_id"])
    return ok(dataset["requests_count"])


@routes.post("/v1/helicone-dataset/{dataset_id:[^/]+}/delete")
async def delete(request: web.Request) -> web.Response:
    dataset = await _dataset(request.app[STORE], request.match_info["dataset_id"])
    await commit(request, DeleteDataset(dataset["id"]), timeout=60.0)
    return ok(None)


@routes.post("/v1/datasets")
async def create_snapshot(request: web.Request) -> web.Response:
    body = _parse(DatasetIn, await json_body(request))
    store = request.app[STORE]
    selection, _rest = parse_selection(body.pairs())
    tree = and_all([leaf for leaf in (body.filter, selection.tree()) if leaf != "all"])
    compiled = compile_filter(tree, store.dialect)  # a bad filter is a 400 here, not an error in the writer
    await require_properties(store, compiled.properties)
    dataset_id = str(uuid.uuid4())
    await commit(request, CreateDataset(dataset_id, body.name, "filter", filter_tree=tree), timeout=60.0)
    return ok({"datasetId": dataset_id, **await _dataset(store, dataset_id)}, status=201)


@routes.get("/v1/datasets")
async def list_all(request: web.Request) -> web.Response:
    return ok([_shape(row) for row in await list_datasets(request.app[STORE])])


@routes.get("/v1/datasets/{dataset_id:[^/]+}")
async def get_one(request: web.Request) -> web.Response:
    return ok(await _dataset(request.app[STORE], request.match_info["dataset_id"]))


@routes.get("/v1/datasets/{dataset_id:[^/]+}/export")
async def export_dataset(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    dataset = await _dataset(store, request.match_info["dataset_id"])
    pairs = [(k, v) for k, v in request.query.items()]
    _selection, rest = parse_selection(pairs, extra=("format", "split", "seed", "part"))
    return await stream_export(request, store, dataset_scope(dataset["id"]), rest, dataset["name"])


@routes.get("/v1/export")
async def export_filter(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    selection, rest = parse_selection(request.query.items(), extra=("format", "split", "seed", "part"))
    compiled = compile_filter(selection.tree(), store.dialect, every_row=True)
    await require_properties(store, compiled.properties)
    return await stream_export(request, store, compiled.where, rest, "export")


async def stream_export(
    request: web.Request, store: Store, where: Frag, rest: dict[str, list[str]], name: str
) -> web.StreamResponse:
    """The rows ``where`` selects as a JSONL file in ``rest``'s format (and split); the console's downloads too."""
    fmt = check_format(single(rest, "format"))
    raw_split = single(rest, "split")
    fraction = None if raw_split is None else check_split(number(raw_split, "split"))
    seed = integer(rest, "seed", 0, -(2**63), 2**63 - 1)
    part = single(rest, "part", "train")
    if part not in ("train", "validation"):
        raise BadRequest(f"part must be train or validation, not {str(part)[:32]!r}")
    export = Export(store, where, fmt)
    total = await export.plan()
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": f'attachment; filename="{_safe(name)}.{fmt}.jsonl"',
            "Feedgate-Export-Rows": str(total),
        }
    )
    if fraction is None:
        await response.prepare(request)
        try:
            await _write_lines(response, export.batches())
        except ConnectionResetError:
            raise  # the client left: nothing failed
        except Exception:
            # The 200 and its headers are sent, so no error answer can follow. End the connection, so the
            # client sees the export cut short instead of waiting for the rest of it.
            log.exception("export broke off after %d of %d rows; closing the connection", export.rows_read, total)
            if request.transport is not None:
                request.transport.close()
            return response
    else:
        spool = Spool()
        try:
            await spool.fill(export.batches())
            train, validation = spool.parts(fraction, seed)
            await response.prepare(request)
            for line in spool.read(train if part == "train" else validation):
                await response.write(line)
        finally:
            spool.close()
    await response.write_eof()
    return response


async def _write_lines(response: web.StreamResponse, batches: AsyncIterator[list[bytes]]) -> None:
    """Each batch written at once (joined: one copy), small ones gathered up to ``_FLUSH_BYTES``."""
    pending: list[bytes] = []
    size = 0
    async for batch in batches:
        pending += batch
        size += sum(map(len, batch))
        if size >= _FLUSH_BYTES:
            await response.write(b"".join(pending))
            pending.clear()
            size = 0
    await response.write(b"".join(pending))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "dataset"
