"""Compressed answers from the fake upstreams: zstd and br as real providers send them, and broken ones.

``X-Fake-Behavior`` switches (besides those of ``fakes.Behavior``):

* ``encoding:<br|zstd|gzip>``: compress the answer that way if the caller's ``Accept-Encoding`` offers it, else
  send it plain, as a real server negotiates;
* ``force-encoding:<br|zstd|gzip|...>``: compress it that way whatever the caller offered (an upstream that
  ignores ``Accept-Encoding``); an encoding this module does not know is sent as the plain bytes under that name;
* ``corrupt-gzip``: a body labelled gzip that is not gzip.

Compressed with the ``zstandard`` and ``brotli`` packages, what the SDKs decode with.
"""

from __future__ import annotations

import gzip

import brotli
import zstandard
from aiohttp import web


def _compress(encoding: str, body: bytes) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(body))
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    if encoding == "gzip":
        return gzip.compress(body)
    return body


def offered(accept_encoding: str) -> set[str]:
    """The encodings an ``Accept-Encoding`` value accepts (q=0 refuses one)."""
    out = set()
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if name and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            out.add(name.strip().lower())
    return out


def encode_answer(request: web.Request, body: bytes, headers: dict[str, str]) -> bytes:
    """The answer's bytes as the switches in ``X-Fake-Behavior`` want them; sets ``Content-Encoding``."""
    for item in request.headers.get("X-Fake-Behavior", "").split(","):
        name, _, arg = item.strip().partition(":")
        if name == "corrupt-gzip":
            headers["Content-Encoding"] = "gzip"
            return b"\x1f\x8b\x08\x00not really gzip at all"
        if name == "force-encoding" or (
            name == "encoding" and arg in offered(request.headers.get("Accept-Encoding", ""))
        ):
            headers["Content-Encoding"] = arg
            return _compress(arg, body)
    return body
