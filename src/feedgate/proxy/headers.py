"""Which headers cross the gateway, in each direction.

Hop-by-hop headers never cross. ``Helicone-*`` headers are feedgate's instructions, not the provider's,
so they are stripped before the upstream call. What the log keeps of them is ``logrows/``'s business.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# W3C trace context: never passed through to a provider (some reject it, and it leaks the caller's trace
# IDs); a provider whose entry says propagate_trace gets feedgate's own span instead (proxy/sending.py).
TRACE_CONTEXT = frozenset({"traceparent", "tracestate"})
# Response headers feedgate recomputes (aiohttp sets length and framing for what it sends).
RESPONSE_DROP = HOP_BY_HOP | {"content-encoding"}


def upstream_headers(incoming: Mapping[str, str]) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Helicone and trace-context ones."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in TRACE_CONTEXT or lower.startswith(("helicone-", "feedgate-")):
            continue
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
