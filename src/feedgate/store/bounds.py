"""What the stores can keep, so every value the API takes in is checked against it before it is accepted.

A value the store cannot keep, or keeps but cannot read back, must be refused when it arrives, with a
clear error naming the field: accepted and then lost in the writer, or stored and then failing every read
that meets it, is far worse. The limits, and why each one:

* Scores are a double (``REAL`` / ``DOUBLE PRECISION``) plus the type given. Every score, whatever its
  type, is within +-2**53: an integer there is exact in a double (beyond it, 2**53 + 1 would come back as
  2**53), and the sums stats take stay finite (PostgreSQL raises on a double overflowing, so two scores
  near the double's maximum would make every stats page fail there).
"""

from __future__ import annotations

import math

MAX_EXACT_INT = 2**53


def score_problem(value: float) -> str | None:
    """Why a score cannot be stored, or None. ``value`` is an int, float or bool as parsed from JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return f"must be between -{MAX_EXACT_INT} and {MAX_EXACT_INT} (2**53), got {value!r}"
    return None
