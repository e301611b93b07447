"""The request list's filters, as the query string carries them, into one Helicone filter tree.

The names are interface (bookmarks and scripts use them): ``since`` and ``until`` (ISO 8601, or back from
now: ``24h``, ``7d``), ``model``, ``user``, ``session``, ``prompt``, ``property=KEY:VALUE`` (repeatable),
``rating=up|down|none``, ``signal``, ``score=NAME>=X`` (also ``<=``, ``>``, ``<``, ``=``; repeatable),
``status=2xx|3xx|4xx|5xx|failed``, ``has_comment=yes`` and ``q`` (text in the prompt or answer). An empty
value means the filter is off, as a filter form sends it. The tree goes through the one filter compiler
(``store/filters.py``), which checks every name and binds every value, as it does for the API's
``POST /v1/request/query``. ``q`` is not part of the tree: it is a bounded search (``store/reads/search.py``)
that only the request list and a request's prev/next run, so the pages that would run it unbounded (sessions,
making a dataset) refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from feedgate.analysis.selection import moment, number
from feedgate.errors import FilterError
from feedgate.store.filters import and_all, check_property_name, check_text

TEXT_FILTERS = {"model": "model", "user": "user_id", "session": "session_id", "prompt": "prompt"}
SEARCH = "q"
TREE_FILTERS = ("since", "until", *TEXT_FILTERS, "property", "rating", "signal", "score", "status", "has_comment")
FILTER_NAMES = (*TREE_FILTERS, SEARCH)  # q is no leaf of the tree: a bounded search of its own
REPEATABLE = frozenset({"property", "score"})
RATINGS: dict[str, bool | None] = {"up": True, "down": False, "none": None}
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "failed")
_SCORE = re.compile(r"(?P<name>[A-Za-z0-9_.:\-]{1,128})\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>\S.*)")
_SCORE_OPS = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt", "=": "equals"}
MAX_VALUE_CHARS = 1000
MAX_SEARCH_CHARS = 200


@dataclass
class ListFilter:
    """The filters in effect: the pairs as given (for links that keep them) and the tree they mean."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    leaves: list[Any] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # the single-valued filters, to refill the form

    @property
    def search(self) -> str | None:
        """The text searched for in prompts and answers (``q``), or None."""
        return self.values.get(SEARCH)

    @property
    def tree(self) -> Any:
        return and_all(self.leaves)

    def query(self, *extra: tuple[str, str]) -> str:
        """These filters (and ``extra`` pairs) as a query string, without the ``?``."""
        return urlencode([*self.pairs, *extra])

    def with_filter(self, name: str, value: str) -> str:
        """The query string narrowed by one more filter (replacing a single-valued one of the same name)."""
        kept = [(k, v) for k, v in self.pairs if k in REPEATABLE or k != name]
        if (name, value) not in kept:
            kept.append((name, value))
        return urlencode(kept)

    def without(self, name: str, value: str | None = None) -> str:
        """The query string with one filter (or one value of a repeatable one) taken off."""
        return urlencode([(k, v) for k, v in self.pairs if not (k == name and (value is None or v == value))])


def parse_filters(
    pairs: Iterable[tuple[str, str]], extra: Iterable[str] = (), now: datetime | None = None, text_search: bool = False
) -> tuple[ListFilter, dict[str, str]]:
    """The list filter in ``pairs``, and the ``extra`` parameters (each at most once); anything else is an error.

    ``q`` is taken only with ``text_search``: a page that would not bound the search refuses it.
    """
    chosen = ListFilter()
    rest: dict[str, str] = {}
    allowed_extra = set(extra)
    for name, raw in pairs:
        value = raw.strip()
        if name in allowed_extra:
            if name in rest:
                raise FilterError(f"{name} may be given once")
            rest[name] = value
            continue
        if name not in FILTER_NAMES:
            shown = ", ".join(FILTER_NAMES)
            raise FilterError(f"unknown filter {name[:64]!r}; the filters are {shown}")
        if not value:
            continue
        if name == SEARCH:
            check_search(value, text_search)
        if len(value) > MAX_VALUE_CHARS:
            raise FilterError(f"{name}: at most {MAX_VALUE_CHARS} characters")
        check_text(value, name)
        if name not in REPEATABLE:
            if name in chosen.values:
                raise FilterError(f"{name} may be given once")
            chosen.values[name] = value
        if name != SEARCH:
            chosen.leaves.append(_leaf(name, value, now))
        chosen.pairs.append((name, value))
    return chosen, rest


def check_search(value: str, allowed: bool) -> None:
    if not allowed:
        raise FilterError(
            "q: the text search works on the request list only, where it is bounded; take it off to use this page"
        )
    if len(value) > MAX_SEARCH_CHARS:
        raise FilterError(f"q: the text search takes 1 to {MAX_SEARCH_CHARS} characters, not {len(value)}")


def _leaf(name: str, value: str, now: datetime | None) -> Any:
    if name in ("since", "until"):
        return {"request": {"created_at": {"gte" if name == "since" else "lt": moment(value, name, now)}}}
    if name in TEXT_FILTERS:
        return {"request": {TEXT_FILTERS[name]: {"equals": value}}}
    if name == "property":
        key, colon, wanted = value.partition(":")
        if not colon:
            raise FilterError(f"property: expected KEY:VALUE, such as feature:search, got {value[:64]!r}")
        check_property_name(key)
        return {"properties": {key: {"equals": wanted}}}
    if name == "rating":
        if value not in RATINGS:
            raise FilterError(f"rating must be up, down or none, not {value[:32]!r}")
        return {"feedback": {"rating": {"equals": RATINGS[value]}}}
    if name == "signal":
        return {"feedback": {"signal": {"equals": value}}}
    if name == "score":
        return _score_leaf(value)
    if name == "status":
        return _status_leaf(value)
    if value != "yes":
        raise FilterError(f"has_comment: the one value is yes, not {value[:32]!r}")
    return {"feedback": {"comment": {"not-equals": None}}}


def _score_leaf(value: str) -> Any:
    match = _SCORE.fullmatch(value)
    if match is None:
        raise FilterError(f"score: expected NAME>=NUMBER (or <=, >, <, =), such as accuracy>=0.8, got {value[:64]!r}")
    wanted = number(match["value"].strip(), f"score {match['name']}")
    return {"scores": {match["name"]: {_SCORE_OPS[match["op"]]: wanted}}}


def _status_leaf(value: str) -> Any:
    if value not in STATUS_CLASSES:
        raise FilterError(f"status must be one of {', '.join(STATUS_CLASSES)}, not {value[:32]!r}")
    if value == "failed":  # no status line at all: the provider was unreachable or went silent
        return {"response": {"status": {"equals": None}}}
    low = int(value[0]) * 100
    return {
        "left": {"response": {"status": {"gte": low}}},
        "operator": "and",
        "right": {"response": {"status": {"lt": low + 100}}},
    }
