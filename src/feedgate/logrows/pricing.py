"""Model price table and per-request cost, in USD.

Every logged request stores ``cost_usd``. A wrong number there is worse than no number: people
sum it, chart it and bill from it. So this module never guesses a price. A model resolves to a
price only by an exact name, by an exact name behind a known provider prefix (``openai/gpt-4o``),
or by a dated snapshot of an exact name (``gpt-4o-2024-11-20`` -> ``gpt-4o``). Anything else,
including a loose prefix (``gpt-4o-mini`` is *not* ``gpt-4o``), yields ``None``, and the caller
stores a null cost rather than a made-up one.

Prices ship in ``feedgate/data/prices.json`` (USD per 1M tokens) and config can override or
extend them by model name.

Token convention: ``input_tokens`` is the *uncached* input count and ``cache_read_tokens`` the
cached count. Anthropic reports usage that way already; OpenAI's ``prompt_tokens`` includes the
cached tokens, so convert with :func:`openai_uncached` first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

__all__ = ["Price", "PriceTable", "openai_uncached"]

_FIELDS = ("input", "output", "cache_read", "cache_write")
_CUSTOM_PROVIDER = "custom"
# What may follow "<table name>-" for a dated snapshot: 2024-11-20, 20241022 or 0613, optionally
# followed by ONE more segment (-preview, -v2:0, -latest); or the bare alias "latest".
_SNAPSHOT_SUFFIX = re.compile(r"(?:(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})(?:-[a-z0-9.:]+)?|latest)")


@dataclass(frozen=True, slots=True)
class Price:
    """List price in USD per 1M tokens. A null cache price means "charged as plain input"."""

    input: float
    output: float
    cache_read: float | None
    cache_write: float | None


def openai_uncached(prompt_tokens: int | None, cached_tokens: int | None) -> int | None:
    """OpenAI ``prompt_tokens`` includes ``cached_tokens``; return the uncached part."""
    if prompt_tokens is None:
        return None
    return max(0, prompt_tokens - (cached_tokens or 0))


def _number(model: str, field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price for {model!r}: {field} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"price for {model!r}: {field} must be finite and >= 0, got {value!r}")
    return float(value)


def _parse_price(model: str, raw: Mapping[str, Any]) -> Price:
    unknown = set(raw) - set(_FIELDS)
    if unknown:
        raise ValueError(f"price for {model!r}: unknown field(s) {sorted(unknown)}; allowed: {_FIELDS}")
    read, write = raw.get("cache_read"), raw.get("cache_write")
    return Price(
        input=_number(model, "input", raw.get("input")),
        output=_number(model, "output", raw.get("output")),
        cache_read=None if read is None else _number(model, "cache_read", read),
        cache_write=None if write is None else _number(model, "cache_write", write),
    )


class PriceTable:
    """Immutable map of model name -> (provider, Price) with conservative name matching."""

    __slots__ = ("_entries", "_resolved", "_by_length", "_prefixes", "updated", "source")

    def __init__(
        self,
        entries: Mapping[str, tuple[str, str, Price]],
        prefixes: frozenset[str] = frozenset(),
        updated: str = "",
        source: str = "",
    ) -> None:
        # key: lower-cased model name -> (provider, model name as written, price)
        self._entries: dict[str, tuple[str, str, Price]] = dict(entries)
        # Every logged request is priced: remember how each model name resolved (a few hundred names at most).
        self._resolved: dict[str, tuple[str, Price] | None] = {}
        self._by_length: list[str] = sorted(self._entries, key=lambda k: (-len(k), k))
        # provider prefixes that may be stripped ("openai/gpt-4o"): the shipped file's groups only
        self._prefixes = prefixes
        self.updated = updated
        self.source = source

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, float | None]] | None = None) -> PriceTable:
        """Shipped price file plus config overrides (same name replaces) and extensions (new name)."""
        text = files("feedgate").joinpath("data/prices.json").read_text(encoding="utf-8")
        data = json.loads(text)
        entries: dict[str, tuple[str, str, Price]] = {}
        for provider, models in data["providers"].items():
            for name, raw in models.items():
                key = name.strip().lower()
                if key in entries:
                    raise ValueError(f"prices.json: model {name!r} listed twice")
                entries[key] = (provider, name, _parse_price(name, raw))
        for name, raw in (overrides or {}).items():
            key = name.strip().lower()
            if not key:
                raise ValueError("price override with an empty model name")
            if key in entries:
                provider = entries[key][0]
            else:
                provider = key.split("/", 1)[0] if "/" in key else _CUSTOM_PROVIDER
            entries[key] = (provider, name.strip(), _parse_price(name, raw))
        return cls(
            entries,
            prefixes=frozenset(p.lower() for p in data["providers"]),
            updated=str(data.get("updated", "")),
            source=str(data.get("source", "")),
        )

    def _match(self, key: str) -> tuple[str, str, Price] | None:
        hit = self._entries.get(key)
        if hit is not None:
            return hit
        for name in self._by_length:  # longest first: gpt-4o-mini-... never lands on gpt-4o
            if key.startswith(name) and key[len(name) : len(name) + 1] == "-":
                if _SNAPSHOT_SUFFIX.fullmatch(key, len(name) + 1):
                    return self._entries[name]
        return None

    def lookup(self, model: str | None) -> tuple[str, Price] | None:
        """Return (matched table name, price), or None when the model is not confidently known."""
        if not model:
            return None
        if model in self._resolved:
            return self._resolved[model]
        found = self._lookup(model)
        if len(self._resolved) < 4096:
            self._resolved[model] = found
        return found

    def _lookup(self, model: str) -> tuple[str, Price] | None:
        key = model.strip().lower()
        hit = self._match(key)
        if hit is None and "/" in key:
            prefix, rest = key.split("/", 1)
            if prefix in self._prefixes:
                hit = self._match(rest)
        if hit is None:
            return None
        return hit[1], hit[2]

    def cost_usd(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> float | None:
        """Cost of one request in USD, or None if the model or the usage is unknown.

        ``input_tokens`` must be the UNCACHED input count and ``cache_read_tokens`` the cached
        count (see :func:`openai_uncached`). Missing counts are 0, but if both input and output
        are missing the usage is unknown and the result is None. A cache price of null falls back
        to the input price.
        """
        if input_tokens is None and output_tokens is None:
            return None
        found = self.lookup(model)
        if found is None:
            return None
        p = found[1]
        read_rate = p.input if p.cache_read is None else p.cache_read
        write_rate = p.input if p.cache_write is None else p.cache_write
        total = (
            (input_tokens or 0) * p.input
            + (output_tokens or 0) * p.output
            + (cache_read_tokens or 0) * read_rate
            + (cache_write_tokens or 0) * write_rate
        )
        return total / 1e6

    def rows(self) -> list[tuple[str, str, Price]]:
        """(provider, model, price) for every entry, sorted by provider then model."""
        return sorted(self._entries.values(), key=lambda r: (r[0], r[1].lower()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None
