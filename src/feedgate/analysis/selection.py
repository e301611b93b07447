"""The simple filters every analysis endpoint and command accepts, parsed the same way for both.

Query string (API) and flags (CLI) map one to one: ``model``, ``user``, ``session``, ``path``, ``prompt``,
``since``, ``until``, ``rating`` (``positive`` | ``negative`` | ``unrated``), ``property.NAME=VALUE`` and
``min_score.NAME=NUMBER`` (each may repeat with different names). The CLI turns its flags into these
pairs, so a command gives the same answer against the store directly or through ``--url``. Times are
ISO 8601 or relative to now: ``30d``, ``12h``, ``2w``, ``90m``. A span in days or weeks starts at the top of
the hour it reaches back to (``30d`` at 14:28 means from 14:00 thirty days ago): the rollups then answer the
whole range, with no partial hour at its start to count from rows, and two calls in the same hour agree.
Minutes and hours stay exact, where an hour's slack would be a large part of the span. A selection becomes a
Helicone filter tree, so it is compiled and checked by the one filter compiler (``store/filters.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from feedgate.errors import FilterError
from feedgate.store.filters import and_all, check_property_name, parse_time
from feedgate.store.utc import utc_text

SIMPLE = ("model", "user", "session", "path", "prompt", "since", "until", "rating")
RATINGS = ("positive", "negative", "unrated")
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")
_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_WHOLE_HOURS = ("d", "w")
_COLUMNS = {"model": "model", "user": "user_id", "session": "session_id", "path": "path", "prompt": "prompt"}


def moment(value: str, where: str, now: datetime | None = None) -> str:
    """An ISO 8601 time, or a span back from now (``30d``), as the stores' ``utc_text``; a span in days or
    weeks from the top of its hour (see the module's docstring)."""
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        try:
            span = timedelta(seconds=float(relative.group(1)) * _UNITS[relative.group(2)])
            found = (now or datetime.now(UTC)) - span
            if relative.group(2) in _WHOLE_HOURS:
                found = found.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            return utc_text(found)
        except OverflowError:
            raise FilterError(
                f"{where}: {value.strip()[:32]!r} reaches back before the year 1; use a shorter span or a date"
            ) from None
    return parse_time(value, where)


class Selection(BaseModel):
    """The filters in effect. Built from query pairs by ``parse_selection``, which checks and normalises
    each value (times become ``utc_text``); as a JSON body (``POST /v1/datasets``) it holds them as sent."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    user: str | None = None
    session: str | None = None
    path: str | None = None
    prompt: str | None = None
    since: str | None = None
    until: str | None = None
    rating: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    min_scores: dict[str, float] = Field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str]]:
        """The selection as query pairs, which ``parse_selection`` reads back."""
        out = [(name, value) for name in SIMPLE if (value := getattr(self, name)) is not None]
        out += [(f"property.{k}", v) for k, v in self.properties.items()]
        return out + [(f"min_score.{k}", repr(v)) for k, v in self.min_scores.items()]

    def tree(self) -> Any:
        """The selection as a Helicone filter tree (``"all"`` when empty)."""
        leaves: list[Any] = []
        for name, column in _COLUMNS.items():
            value = getattr(self, name)
            if value is not None:
                leaves.append({"request": {column: {"equals": value}}})
        if self.since is not None:
            leaves.append({"request": {"created_at": {"gte": self.since}}})
        if self.until is not None:
            leaves.append({"request": {"created_at": {"lt": self.until}}})
        if self.rating is not None:
            value = {"positive": True, "negative": False, "unrated": None}[self.rating]
            leaves.append({"feedback": {"rating": {"equals": value}}})
        leaves += [{"properties": {name: {"equals": value}}} for name, value in sorted(self.properties.items())]
        leaves += [{"scores": {name: {"gte": value}}} for name, value in sorted(self.min_scores.items())]
        return and_all(leaves)

    def describe(self) -> dict[str, Any]:
        """The filters in effect, for answers to show what they cover."""
        out: dict[str, Any] = {name: getattr(self, name) for name in SIMPLE if getattr(self, name) is not None}
        if self.properties:
            out["properties"] = dict(self.properties)
        if self.min_scores:
            out["min_scores"] = dict(self.min_scores)
        return out


def parse_selection(
    pairs: Iterable[tuple[str, str]], extra: Collection[str] = (), now: datetime | None = None
) -> tuple[Selection, dict[str, list[str]]]:
    """Split query pairs into a ``Selection`` and the ``extra`` parameters the caller takes (all values kept).

    Anything else is an error naming the parameters that are allowed.
    """
    selection = Selection()
    rest: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in extra:
            rest.setdefault(name, []).append(value)
        elif name in ("since", "until"):
            setattr(selection, name, moment(value, name, now))
        elif name == "rating":
            if value not in RATINGS:
                raise FilterError(f"rating must be one of {', '.join(RATINGS)}, not {value[:32]!r}")
            selection.rating = value
        elif name in SIMPLE:
            setattr(selection, name, value)
        elif name.startswith("property."):
            key = name[len("property.") :]
            check_property_name(key)
            selection.properties[key] = value
        elif name.startswith("min_score."):
            key = name[len("min_score.") :]
            check_property_name(key)
            selection.min_scores[key] = number(value, name)
        else:
            allowed = ", ".join([*SIMPLE, "property.NAME", "min_score.NAME", *sorted(extra)])
            raise FilterError(f"unknown parameter {name[:64]!r}; allowed: {allowed}")
    return selection, rest


def number(value: str, where: str) -> float:
    try:
        parsed = float(value)
    except ValueError:
        raise FilterError(f"{where}: expected a number, got {value[:32]!r}") from None
    if not math.isfinite(parsed):
        raise FilterError(f"{where}: expected a finite number, got {value[:32]!r}")
    return parsed


def single(rest: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = rest.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise FilterError(f"{name} may be given once")
    return values[0]


def integer(rest: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = single(rest, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{name}: expected a whole number, got {raw[:32]!r}") from None
    if not low <= value <= high:
        raise FilterError(f"{name} must be between {low} and {high}, got {value}")
    return value
