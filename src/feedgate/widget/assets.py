"""The widget's files, read from the package once when the app is made, each with a strong ETag and gzip copy.

They are small and never change while the process runs, so each answer is bytes already in memory: the
ETag is the content's hash (a new feedgate version with a changed script gets a new one at once), and the
gzip copy is made here rather than per request.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str  # strong and quoted, of the plain body
    gzip_etag: str  # the gzip copy is another representation, so it has its own
    content_type: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:32]
        return cls(body, gzip.compress(body, compresslevel=9, mtime=0), f'"{digest}"', f'"{digest}-gz"', content_type)


@dataclass(frozen=True)
class WidgetAssets:
    script: Asset  # /widget/feedback.js
    example_page: Asset  # /widget/example
    example_script: Asset  # /widget/example.js


def _read(name: str) -> bytes:
    return files("feedgate.widget").joinpath(name).read_bytes()


def load_assets() -> WidgetAssets:
    return WidgetAssets(
        script=Asset.of(_read("feedback.js"), "text/javascript"),
        example_page=Asset.of(_read("example.html"), "text/html"),
        example_script=Asset.of(_read("example.js"), "text/javascript"),
    )
