"""The Helicone feature headers of one request, parsed (and refused with 400) before anything is sent.

``FEATURE_HEADERS`` is what the hot path checks for: a request carrying none of them takes the plain path and
pays for nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from feedgate.proxy.features.cache import CACHE_ENABLED, CACHE_READ, CACHE_SAVE, CachePolicy, parse_cache
from feedgate.proxy.features.fallbacks import FALLBACKS, Target, plan_targets
from feedgate.proxy.features.ratelimit import RATE_LIMIT_POLICY, RateRequest, rate_request
from feedgate.proxy.features.retry import RETRY_ENABLED, RetryPolicy, parse_retry
from feedgate.proxy.features.target_url import OPENAI_API_BASE, TARGET_URL
from feedgate.proxy.providers import Provider

STREAM_USAGE = "Helicone-Stream-Usage"
FEATURE_HEADERS = (
    TARGET_URL,
    OPENAI_API_BASE,
    FALLBACKS,
    CACHE_ENABLED,
    CACHE_SAVE,
    CACHE_READ,
    RETRY_ENABLED,
    RATE_LIMIT_POLICY,
    STREAM_USAGE,
)


@dataclass(frozen=True, slots=True)
class Features:
    targets: list[Target]
    fallbacks: bool
    retry: RetryPolicy | None
    rate: RateRequest | None
    cache: CachePolicy | None
    # Helicone-Stream-Usage: true: the client wants the usage chunk feedgate asks for, so it is not hidden.
    show_stream_usage: bool


def parse_features(
    headers: Mapping[str, str], body: bytes, provider: Provider, allowed_origins: frozenset[str]
) -> Features:
    """Every feature header of a request; BadRequest for the first one that is malformed or not allowed."""
    policy = headers.get(RATE_LIMIT_POLICY)
    return Features(
        targets=plan_targets(headers, provider, allowed_origins),
        fallbacks=FALLBACKS in headers,
        retry=parse_retry(headers),
        rate=rate_request(policy, headers, body) if policy is not None else None,
        cache=parse_cache(headers),
        show_stream_usage=headers.get(STREAM_USAGE, "").strip().lower() == "true",
    )
