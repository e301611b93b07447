"""Read back one logged request: ``GET /v1/request/{id}``."""

from __future__ import annotations

from aiohttp import web

from feedgate.analysis.request_rows import helicone_row
from feedgate.api.results import ok
from feedgate.appkeys import STORE
from feedgate.errors import NotFound
from feedgate.request_ids import check_id
from feedgate.store.reads.feedback import request_annotations


async def get_request(request: web.Request) -> web.Response:
    request_id = check_id(request.match_info["request_id"])
    attempts = await request.app[STORE].request_attempts(request_id)
    if not attempts:
        raise NotFound(f"no request with ID {request_id}")
    row = helicone_row(attempts[-1], attempts=len(attempts))
    notes = await request_annotations(request.app[STORE], request_id)
    # Properties set after the fact (PUT .../property) override those sent as headers.
    row["request_properties"] = row["properties"] = {**row["properties"], **notes.pop("properties")}
    row.update(notes)
    return ok(row)
