"""Which headers cross the gateway, in each direction.

Hop-by-hop headers never cross. ``Helicone-*`` headers are feedgate's instructions, not the provider's,
so they are stripped before the upstream call. What the log keeps of them is ``logrows/``'s business.

Two headers describe bodies feedgate handles, so they change on the way:

* ``Content-Encoding`` of a request: aiohttp decodes a gzip, deflate, br or zstd request body as it reads it,
  so the body forwarded is the decoded one and the header that described the compressed bytes goes. Any other
  encoding is not decoded, and its bytes go on with their header.
* ``Accept-Encoding``: the answer passes through to the client as it comes, and the log decodes it; feedgate
  decodes gzip and deflate. When the client also offers br or zstd (the openai SDK does once ``brotli`` or a
  zstd package is installed), the provider is offered only the gzip, deflate and identity the client offered,
  so the client still gets an encoding it asked for and the log can read it. A client offering none of those
  gets identity, which every client accepts.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

from feedgate.config.checks import HOP_BY_HOP

# W3C trace context: never passed through to a provider (some reject it, and it leaks the caller's trace
# IDs); a provider whose entry says propagate_trace gets feedgate's own span instead (proxy/sending.py).
TRACE_CONTEXT = frozenset({"traceparent", "tracestate"})
# Response headers feedgate recomputes (aiohttp sets length and framing for what it sends).
RESPONSE_DROP = HOP_BY_HOP | {"content-encoding"}


# The request encodings aiohttp decodes while reading a body (aiohttp.http_parser), exactly as it matches them.
DECODED_REQUEST_ENCODINGS = frozenset({"gzip", "deflate", "br", "zstd"})
# The answer encodings the log can decode (logrows/build.py).
LOGGABLE_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")


def loggable_accept_encoding(value: str) -> str:
    """An ``Accept-Encoding`` that keeps, of what ``value`` offers, only the encodings the log can decode."""
    kept: dict[str, str] = {}  # name -> the item as offered (with its q-value)
    for item in value.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue  # refused
        if name == "*":
            for each in ("gzip", "deflate"):
                kept.setdefault(each, each)
        elif name in LOGGABLE_ENCODINGS:
            kept[name] = item.strip()
    return ", ".join(kept.values()) if kept else "identity"


def upstream_headers(incoming: Mapping[str, str]) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Helicone and trace-context ones, described for the body and answer
    as forwarded."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in TRACE_CONTEXT or lower.startswith(("helicone-", "feedgate-")):
            continue
        if lower == "accept-encoding":
            # A substring test first: most clients offer only gzip and deflate, and pay nothing more.
            if "br" in value or "zstd" in value or "*" in value:
                value = loggable_accept_encoding(value)
        elif lower == "content-encoding" and value.lower() in DECODED_REQUEST_ENCODINGS:
            continue  # the body was decoded on the way in
        out.add(name, value)
    if "Accept-Encoding" not in out:
        # Without the header any encoding is acceptable (RFC 9110), and the answer, passed through as it
        # comes, could reach a client that cannot decode it.
        out["Accept-Encoding"] = "identity"
    return out


def client_headers(upstream: Mapping[str, str], *, keep_encoding: bool) -> CIMultiDict[str]:
    """The upstream's response headers as the client should see them."""
    drop = HOP_BY_HOP if keep_encoding else RESPONSE_DROP
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out
