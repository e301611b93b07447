"""The console's static files (its CSS and scripts, and the vendored htmx and uPlot), served by feedgate itself.

Read from the package once, when the console app is made, and kept in memory (about 100 kB). Each file's URL
carries a hash of its content (``?v=...``), so browsers may keep it a year (``immutable``) and still fetch
the new one after an upgrade; the same hash is its ETag. See ``static/vendor/VENDORED.md`` for the versions.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

from feedgate.errors import NotFound

STATIC_PACKAGE = "feedgate.console"
SERVED_SUFFIXES = (".css", ".js")
LONG_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class Assets:
    """The static files by their path under ``static/`` (``console.css``, ``vendor/htmx.min.js``...)."""

    def __init__(self) -> None:
        self.files: dict[str, Asset] = {}
        self._collect(resources.files(STATIC_PACKAGE).joinpath("static"), "")

    def _collect(self, folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                self._collect(entry, f"{name}/")
            elif name.endswith(SERVED_SUFFIXES):
                body = entry.read_bytes()
                content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                self.files[name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])

    def url(self, name: str) -> str:
        """The URL a page links ``name`` by; an unknown name is a bug in a template, so it fails loudly."""
        return f"/console/static/{name}?v={self.files[name].etag}"

    async def handler(self, request: web.Request) -> web.Response:
        asset = self.files.get(request.match_info["name"])
        if asset is None:
            raise NotFound("There is no such file.")
        etag = f'"{asset.etag}"'
        headers = {"ETag": etag, "Cache-Control": LONG_CACHE}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers)
