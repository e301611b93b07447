"""What the stores can keep, so every value the API takes in is checked against it before it is accepted.

A value the store cannot keep, or keeps but cannot read back, must be refused when it arrives, with a
clear error naming the field: accepted and then lost in the writer, or stored and then failing every read
that meets it, is far worse. The limits, and why each one:

* Scores are a double (``REAL`` / ``DOUBLE PRECISION``) plus the type given. Every score, whatever its
  type, is within +-2**53: an integer there is exact in a double (beyond it, 2**53 + 1 would come back as
  2**53), and the sums stats take stay finite (PostgreSQL raises on a double overflowing, so two scores
  near the double's maximum would make every stats page fail there).
* Token counts are ``INTEGER`` columns, which PostgreSQL keeps in 32 bits.
* Integers compared in SQL (filters) are bound as 64-bit integers by SQLite.
* Times are ISO 8601 text with a four-digit year, so they sort as text: years 1 to 9999.
* Text columns of PostgreSQL cannot hold the NUL character; SQLite can, but refusing it on both keeps the
  two stores alike. JSON text is not affected: a NUL inside a JSON string is written as ``\\u0000``.
* JSON the API keeps (feedback metadata, dataset meta) is nested at most ``MAX_JSON_DEPTH`` levels: it is
  re-encoded before it is stored, and the encoder stops at 254 levels.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

MAX_EXACT_INT = 2**53
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1
MAX_JSON_DEPTH = 32
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
LATEST_EPOCH_S = 253402300799  # 9999-12-31T23:59:59Z, the last whole second the stores' text can hold
NUL = "\x00"
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"


def score_problem(value: float) -> str | None:
    """Why a score cannot be stored, or None. ``value`` is an int, float or bool as parsed from JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return f"must be between -{MAX_EXACT_INT} and {MAX_EXACT_INT} (2**53), got {value!r}"
    return None


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0, ``{}`` is 1), counting at most to ``limit + 1``.

    Iterative, so a value nested far deeper than Python's recursion limit is measured without one.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def depth_problem(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    if json_depth(value, limit) > limit:
        return f"is nested more than {limit} levels deep"
    return None


def first_nul(value: Any, where: str) -> str | None:
    """The path (``where.key.0``) of the first string or key holding a NUL in a parsed JSON value, or None."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    return path
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{index}") for index, child in enumerate(item))
    return None


def moment_problem(moment: datetime) -> str | None:
    """Why an aware time cannot be written as the stores' text, or None."""
    if not EARLIEST <= moment <= LATEST:
        return "must be between the years 1 and 9999"
    return None
