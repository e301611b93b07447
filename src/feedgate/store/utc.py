"""The one textual form of a UTC time, written and read back.

Both stores keep times as this text (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so they compare, sort and bucket
by day alike; ``parse_utc_text`` is its inverse.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

UTC_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_text(moment: datetime | float | None = None) -> str:
    """The one textual form of a UTC time both stores use, so they compare and sort alike."""
    if moment is None:
        moment = time.time()
    if isinstance(moment, datetime):
        # Formatted by hand: strftime writes the year 5 as "5", which would sort after "2025".
        m = moment.astimezone(UTC)
        return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"
    whole = int(moment)
    micros = min(int((moment - whole) * 1_000_000 + 0.5), 999_999)
    return f"{_utc_second(whole)}.{micros:06d}Z"


@functools.lru_cache(maxsize=16)
def _utc_second(whole: int) -> str:
    # Every logged row is stamped, and rows come many to a second: format each second once.
    t = time.gmtime(whole)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def parse_utc_text(text: str) -> datetime:
    """A ``utc_text`` string back to an aware UTC datetime; ``ValueError`` for anything else."""
    return datetime.strptime(text, UTC_TEXT_FORMAT).replace(tzinfo=UTC)
