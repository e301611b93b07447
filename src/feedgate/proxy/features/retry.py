"""``Helicone-Retry-Enabled``: retry 429 and 5xx answers (and failed connections) with exponential back-off.

Helicone retries with the ``async-retry`` package; the same parameters mean the same thing here:
``helicone-retry-num`` retries (default 5) after the first attempt, waiting
``min(min-timeout * factor ** (n - 1), max-timeout)`` milliseconds before retry ``n`` (defaults 1000 ms, 2, 10000 ms).
A ``Retry-After`` from the upstream lengthens a wait up to ``max-timeout``. A retry happens only before any byte
of the answer went to the client: the decision is made on the status line, and a failed answer is drained and
dropped, never relayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from feedgate.errors import BadRequest

RETRY_ENABLED = "Helicone-Retry-Enabled"
_LIMITS = {  # header -> (field, default, lowest, highest)
    "helicone-retry-num": ("retries", 5.0, 0.0, 20.0),
    "helicone-retry-factor": ("factor", 2.0, 1.0, 10.0),
    "helicone-retry-min-timeout": ("min_timeout_ms", 1000.0, 0.0, 300_000.0),
    "helicone-retry-max-timeout": ("max_timeout_ms", 10_000.0, 0.0, 300_000.0),
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 5
    factor: float = 2.0
    min_timeout_ms: float = 1000.0
    max_timeout_ms: float = 10_000.0

    def delay_s(self, retry: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        delay = min(self.min_timeout_ms * self.factor ** (retry - 1), self.max_timeout_ms)
        if retry_after is not None:
            try:
                delay = max(delay, min(float(retry_after) * 1000.0, self.max_timeout_ms))
            except ValueError:
                pass  # an HTTP-date Retry-After: keep the computed back-off
        return delay / 1000.0


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry(headers: Mapping[str, str]) -> RetryPolicy | None:
    """The retry policy a request asks for; BadRequest for a malformed parameter."""
    if headers.get(RETRY_ENABLED, "").strip().lower() != "true":
        return None
    values: dict[str, float] = {}
    for header, (field, default, lowest, highest) in _LIMITS.items():
        raw = headers.get(header)
        if raw is None:
            values[field] = default
            continue
        try:
            number = float(raw)
        except ValueError:
            number = float("nan")
        if not lowest <= number <= highest:  # also false for NaN
            raise BadRequest(f"{header} must be a number from {lowest:g} to {highest:g}, got {raw[:40]!r}")
        values[field] = number
    if values["retries"] != int(values["retries"]):
        raise BadRequest(f"helicone-retry-num must be a whole number, got {values['retries']:g}")
    if values["min_timeout_ms"] > values["max_timeout_ms"]:
        raise BadRequest("helicone-retry-min-timeout must not exceed helicone-retry-max-timeout")
    return RetryPolicy(
        retries=int(values["retries"]),
        factor=values["factor"],
        min_timeout_ms=values["min_timeout_ms"],
        max_timeout_ms=values["max_timeout_ms"],
    )
