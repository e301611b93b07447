"""How SQL is written once for SQLite and PostgreSQL: the few places where the two differ.

Queries are written with ``?`` placeholders and these helpers; each store's ``query`` and ``fetch`` turn
the placeholders into ``$1, $2 ...`` for asyncpg (``dollar_params``), and ``plain_value`` turns asyncpg's
result types into the plain values SQLite returns, so code above the store sees the same values from
both. Writes inside the writer's transaction go through an ``Executor``. Everything else
(``COALESCE``, ``CASE``, ``substr``, window functions, partial indexes, ``LIKE``) is spelled the same in
both. Timestamps are ISO text in both stores, so
comparing, sorting and bucketing by day (``substr(datetime_utc, 1, 10)``) need no dialect help.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol


@dataclass(frozen=True, slots=True)
class Frag:
    """A piece of SQL with its bound parameters, in order. Values never go into ``sql`` itself."""

    sql: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Frag) -> Frag:
        return Frag(self.sql + other.sql, self.params + other.params)

    def wrap(self, before: str, after: str = "") -> Frag:
        return Frag(before + self.sql + after, self.params)


def join(separator: str, parts: Iterable[Frag]) -> Frag:
    items = list(parts)
    return Frag(separator.join(p.sql for p in items), tuple(v for p in items for v in p.params))


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Literal["sqlite", "postgres"]

    def render(self, sql: str) -> str:
        """``?`` -> ``$n`` for PostgreSQL (the stores' ``query``/``fetch`` also accept ``?`` as is)."""
        return sql if self.name == "sqlite" else dollar_params(sql)

    def json_text(self, column: str, key: str) -> Frag:
        """The text value of top-level ``key`` in the JSON object stored as text in ``column``."""
        if self.name == "sqlite":
            # The key is bound inside a quoted JSON path; keys are checked against PROPERTY_NAME first,
            # so they hold no '"' or '\\' that could change the path's meaning.
            return Frag(f"json_extract({column}, ?)", (f'$."{key}"',))
        return Frag(f"({column}::jsonb ->> ?)", (key,))

    def contains(self, expr: str) -> str:
        """Case-insensitive substring test of ``expr`` against one bound needle (Helicone's ``contains``)."""
        function = "instr" if self.name == "sqlite" else "strpos"
        return f"{function}(lower({expr}), lower(?)) > 0"

    def bytes_contain(self, expr: str) -> str:
        """Whether the bytes in ``expr`` (a BLOB / BYTEA column) hold one bound needle, ignoring ASCII case.

        The needle is bound as ``ascii_folded`` makes it. Bytes that are not UTF-8 never make either store
        fail: SQLite reads a BLOB cast to TEXT as it is; PostgreSQL reads each byte as one LATIN1 character
        (every byte is one), folds A-Z alone, and looks for the needle's bytes read the same way, so the
        match is byte for byte apart from ASCII case. LATIN1 has no NUL, so PostgreSQL matches a body holding
        one byte for byte, case and all.
        """
        if self.name == "sqlite":
            return f"instr(lower(CAST({expr} AS TEXT)), ?) > 0"
        folded = f"translate(convert_from({expr}, 'LATIN1'), '{_UPPER}', '{_UPPER.lower()}')"
        return (
            f"CASE WHEN position(decode('00', 'hex') IN {expr}) = 0 THEN strpos({folded}, ?) > 0 "
            f"ELSE position(convert_to(?, 'UTF8') IN {expr}) > 0 END"
        )

    def ascii_folded(self, needle: str) -> tuple[str, ...]:
        """The parameters ``bytes_contain`` binds for ``needle``."""
        folded = needle.encode().lower()  # bytes.lower() folds A-Z alone, as both stores' folding here does
        if self.name == "sqlite":
            return (folded.decode(),)
        return (folded.decode("latin-1"), needle)

    def like(self, expr: str, pattern: str) -> Frag:
        """Case-sensitive LIKE in both stores (SQLite's LIKE ignores ASCII case, so use GLOB there)."""
        if self.name == "postgres":
            return Frag(f"{expr} LIKE ?", (pattern,))
        return Frag(f"{expr} GLOB ?", (_like_to_glob(pattern),))

    def ilike(self, expr: str, pattern: str) -> Frag:
        return Frag(f"lower({expr}) LIKE lower(?)", (pattern,))

    def requests_joined_by_id(self) -> str:
        """``requests r`` where feedback rows drive a join to it by ``request_id``.

        SQLite otherwise picks the index of a filter's column (``model`` and time, say) for ``r``, and then
        walks every request of that model for each feedback row: minutes at 100,000 requests. Looked up
        by request ID, each feedback row costs one index probe. PostgreSQL plans the join itself.
        """
        return "requests r INDEXED BY requests_request_id_model" if self.name == "sqlite" else "requests r"

    def requests_by_session(self) -> str:
        """``requests r`` read by a list of session IDs, which SQLite would otherwise read through the index of
        a filter's column when one is given. PostgreSQL weighs the two itself."""
        return "requests r INDEXED BY requests_session_id" if self.name == "sqlite" else "requests r"

    def week_start(self, expr: str) -> str:
        """The Monday (``YYYY-MM-DD``) of the week holding the ISO timestamp ``expr``."""
        if self.name == "sqlite":
            return f"date(substr({expr}, 1, 10), '-6 days', 'weekday 1')"
        return f"to_char(date_trunc('week', substr({expr}, 1, 10)::date), 'YYYY-MM-DD')"

    def param(self, kind: str) -> str:
        """A bound value compared with a column. PostgreSQL types ``$n`` after the column, and asyncpg then
        truncates 200.5 to 200 for an INTEGER column; a number is compared as a float in both stores."""
        return "CAST(? AS DOUBLE PRECISION)" if self.name == "postgres" and kind == "number" else "?"

    def real(self, expr: str) -> str:
        """``expr`` as a floating-point number (score values, averages)."""
        return f"CAST({expr} AS {'REAL' if self.name == 'sqlite' else 'DOUBLE PRECISION'})"


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _like_to_glob(pattern: str) -> str:
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(_glob_literal(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
    if escaped:
        out.append("\\")
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[]" else char


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgres")


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# A quoted literal is skipped whole, so a '?' inside one is never taken for a placeholder.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")


def dollar_params(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2 ...``, in order."""
    counter = 0

    def number(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _PLACEHOLDER.sub(number, sql)


def plain_value(value: Any) -> Any:
    """asyncpg's ``Decimal`` (from SUM/AVG of integers) and ``memoryview`` as SQLite would return them."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


class Executor(Protocol):
    """A write connection inside the writer's transaction; statements use ``?`` placeholders."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it inserted, updated or deleted."""
        ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query, read inside the transaction (so they see its own writes)."""
        ...
