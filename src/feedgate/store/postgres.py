"""The shared store for several gateway instances: PostgreSQL through asyncpg.

Same schema, same semantics as ``SqliteStore`` (the contract tests run both): timestamps are ISO text,
bodies are bytes, attempts are numbered per request ID. Differences are only in how the work is done:

* Two pools: one connection for the writer (only ``apply`` uses it, one transaction per batch) and a read
  pool of ``pool_min``..``pool_max`` connections, so reads never queue behind a large batch and a batch never
  waits for a free reader. Pools reconnect by themselves when the database comes back.
* A batch of logged requests is one ``INSERT ... SELECT FROM unnest(...)`` statement: one round trip for the
  whole batch, however many rows it holds. Attempt numbers are computed in that statement; a transaction
  advisory lock keeps two instances from numbering the same request ID at the same time.
* Migrations run under a session advisory lock, so instances starting together apply each step once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentError

from feedgate.config import mask_url
from feedgate.errors import RowRejected, StoreUnavailable, StoreUnreachable
from feedgate.store.bodies import decoded_rows
from feedgate.store.dialect import POSTGRES, Dialect, dollar_params, plain_value
from feedgate.store.migrations import MIGRATIONS, statements
from feedgate.store.ops import REQUEST_COLUMNS, CacheEntry, InsertRequest, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.rollups.keeper import RollupKeeper, finish_rollups, open_rollups, rollups_change
from feedgate.store.signals import Derived, Lookup, insert_derived_signals
from feedgate.store.statements import SELECT_CACHE_ENTRIES, apply_other_ops, cache_entry
from feedgate.store.utc import utc_text

log = logging.getLogger("feedgate.store")
if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Errors caused by a record's content: PostgreSQL's classes 22 (data) and 23 (constraints), and asyncpg's own
# check of an argument before it is sent (a value out of range for its column type).
_CONTENT_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ArgumentError)
# Errors that mean "not reachable yet": worth waiting for when database.connect_wait_s allows it. A wrong
# password or a missing database is not on this list: waiting would not fix it.
_TRANSIENT = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)
# Same-conversation lookup for a whole batch at once (SqliteStore's is one VALUES statement): for each new row,
# the latest earlier answer to the same messages from the same session or user inside the window.
# Newest first along the fingerprint's time index, so the walk ends at the first match (as on SQLite).
_PREVIOUS_SAME_CONVERSATION = """
SELECT u.ord, p.request_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS u(fp, rid, since, upto, sid, uid, ord)
CROSS JOIN LATERAL (
    SELECT r.request_id FROM requests r
    WHERE r.messages_fingerprint = u.fp AND r.request_id <> u.rid
      AND r.datetime_utc >= u.since AND r.datetime_utc <= u.upto
      AND ((u.sid IS NOT NULL AND r.session_id = u.sid) OR (u.uid IS NOT NULL AND r.user_id = u.uid))
      AND (r.user_id IS NOT NULL OR r.session_id IS NOT NULL)
    ORDER BY r.datetime_utc DESC, r.id DESC LIMIT 1
) p
ORDER BY u.ord
"""


def split_schema(url: str) -> tuple[str, str | None]:
    """Take feedgate's own ``?schema=NAME`` out of a PostgreSQL URL (asyncpg would send it to the server)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema or None


READ_TIMEOUT_S = 60.0


class PostgresStore(Store):
    dialect: Dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        regenerate_window_s: float = 600.0,
        pool_min: int = 1,
        pool_max: int = 10,
        connect_wait_s: float = 0.0,
        schema: str | None = None,
        rollups: Sequence[str] | None = (),
    ) -> None:
        self.dsn, url_schema = split_schema(url)
        # The properties rolled up besides the fixed dimensions; None: rollups off.
        self.rollups = RollupKeeper(rollups) if rollups is not None else None
        self.schema = schema or url_schema
        if self.schema is not None and not _SCHEMA_NAME.fullmatch(self.schema):
            raise ValueError(f"schema must be a plain SQL name ({_SCHEMA_NAME.pattern}), not {self.schema!r}")
        self.regenerate_window = timedelta(seconds=regenerate_window_s)
        self.pool_min, self.pool_max = pool_min, max(pool_min, pool_max)
        self.connect_wait_s = connect_wait_s
        self._read: asyncpg.Pool[asyncpg.Record] | None = None
        self._write: asyncpg.Pool[asyncpg.Record] | None = None
        self._insert_requests = ""
        # A read still running after this is cancelled and answered 503: a report over rows the rollups cannot
        # answer, on a store of many millions, can run longer than anyone waits for a page.
        self.read_timeout_s = READ_TIMEOUT_S

    @property
    def _server_settings(self) -> dict[str, str]:
        # No JIT compilation: feedgate's reads over rollups and indexes cost more than its threshold by the
        # planner's estimate yet run in tens of milliseconds, and compiling them added about 40 ms to each
        # (stats from rollups at a million requests: 94 -> 53 ms a query).
        settings: dict[str, str] = {"jit": "off"}
        if "application_name" not in dict(parse_qsl(urlsplit(self.dsn).query)):  # the URL's own name wins
            settings["application_name"] = "feedgate"
        if self.schema is not None:
            settings["search_path"] = f'"{self.schema}"'
        return settings

    async def open(self) -> None:
        conn = await self._first_connection()
        try:
            applied = await self._migrate(conn)
            self._insert_requests = await _insert_requests_sql(conn)
        finally:
            await conn.close()
        common: dict[str, Any] = {
            "server_settings": self._server_settings,
            "timeout": 10.0,
            # Long enough for the biggest batch; short enough that a half-open connection cannot hang the
            # writer forever (it retries on a fresh connection instead).
            "command_timeout": 60.0,
        }
        try:
            self._write = await asyncpg.create_pool(self.dsn, min_size=1, max_size=1, **common)
            self._read = await asyncpg.create_pool(self.dsn, min_size=self.pool_min, max_size=self.pool_max, **common)
        except (*_TRANSIENT, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise StoreUnreachable(f"cannot use the database at {mask_url(self.dsn)}: {_reason(exc)}") from None
        await open_rollups(self, self.rollups, build="m010_rollups" in applied)

    async def _first_connection(self) -> asyncpg.Connection[asyncpg.Record]:
        """Connect once, waiting up to ``connect_wait_s`` for a database that is not up yet."""
        deadline = time.monotonic() + self.connect_wait_s
        delay = 0.2
        while True:
            try:
                return await asyncpg.connect(self.dsn, server_settings=self._server_settings, timeout=10.0)
            except _TRANSIENT as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    waited = f" after waiting {self.connect_wait_s:g}s" if self.connect_wait_s else ""
                    raise StoreUnreachable(
                        f"cannot reach the database at {mask_url(self.dsn)}{waited}: {_reason(exc)}"
                        + ("" if self.connect_wait_s else " (set database.connect_wait_s to wait for it)")
                    ) from None
                log.warning("database not reachable yet (%s); retrying for up to %.0fs", _reason(exc), left)
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 2.0)
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise StoreUnreachable(f"cannot use the database at {mask_url(self.dsn)}: {_reason(exc)}") from None

    async def _migrate(self, conn: asyncpg.Connection[asyncpg.Record]) -> list[str]:
        # A session lock, held across every step: a second instance starting now waits here, then finds
        # the steps recorded and skips them.
        lock_key = f"feedgate.migrate.{self.schema or 'public'}"
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
        try:
            if self.schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS feedgate_migrations (name TEXT PRIMARY KEY, applied_utc TEXT NOT NULL)"
            )
            applied = {row[0] for row in await conn.fetch("SELECT name FROM feedgate_migrations")}
            now: list[str] = []
            for step in MIGRATIONS:
                if step.name in applied:
                    continue
                async with conn.transaction():
                    for statement in statements(step.postgres):
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO feedgate_migrations (name, applied_utc) VALUES ($1, $2)", step.name, utc_text()
                    )
                log.info("applied migration %s", step.name)
                now.append(step.name)
            return now
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)

    async def close(self) -> None:
        for pool in (self._read, self._write):
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), 10)
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    pool.terminate()
        self._read = self._write = None

    @property
    def reader(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._read is None:
            raise RuntimeError("store is not open")
        return self._read

    async def ping(self) -> None:
        await self.reader.fetchval("SELECT 1")

    async def applied_migrations(self) -> list[str]:
        rows = await self.reader.fetch("SELECT name FROM feedgate_migrations ORDER BY name")
        return [row[0] for row in rows]

    async def apply(self, ops: Sequence[WriteOp]) -> None:
        if self._write is None:
            raise RuntimeError("store is not open")
        try:
            async with self._write.acquire() as conn, conn.transaction():
                db = AsyncpgExecutor(conn)
                inserts = [op for op in ops if isinstance(op, InsertRequest)]
                change = None
                if self.rollups is not None and rollups_change(ops):
                    # Instances take turns at changing rollups, so each reads the states the other committed.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"feedgate.rollups.{self.schema}")
                    change = await self.rollups.begin(db, ops)
                derived = await self._insert(conn, db, inserts) if inserts else []
                await apply_other_ops(db, POSTGRES, ops)
                await finish_rollups(self.rollups, db, change, ops, derived)
        except _CONTENT_ERRORS as exc:
            raise RowRejected(f"{type(exc).__name__}: {exc}") from exc

    async def _insert(self, conn: Connection, db: AsyncpgExecutor, inserts: list[InsertRequest]) -> list[Derived]:
        if not all(op.fresh_id for op in inserts):
            # Attempt numbers are MAX(attempt) + 1: an instance inserting the same request ID concurrently
            # would compute the same number, so inserting batches take turns (per schema, until commit).
            # IDs the gateway minted itself cannot be retried anywhere else, so batches of those skip it.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"feedgate.requests.{self.schema}")
        columns: list[list[Any]] = [list(column) for column in zip(*(op.values for op in inserts), strict=True)]
        columns.append([op.fresh_id for op in inserts])
        await conn.execute(self._insert_requests, *columns)

        async def find_previous(lookups: list[tuple[int, Lookup]]) -> dict[int, str]:
            arrays = [list(column) for column in zip(*(args for _, args in lookups), strict=True)]
            rows = await conn.fetch(_PREVIOUS_SAME_CONVERSATION, *arrays)
            return {lookups[row["ord"] - 1][0]: row["request_id"] for row in rows}

        return await insert_derived_signals(db, inserts, self.regenerate_window, find_previous)

    async def request_attempts(self, request_id: str) -> list[dict[str, Any]]:
        rows = await self.reader.fetch("SELECT * FROM requests WHERE request_id = $1 ORDER BY attempt", request_id)
        return decoded_rows(dict(row) for row in rows)

    async def requests_exist(self, request_ids: Sequence[str]) -> set[str]:
        if not request_ids:
            return set()
        rows = await self.reader.fetch(
            "SELECT DISTINCT request_id FROM requests WHERE request_id = ANY($1::text[])", list(set(request_ids))
        )
        return {row[0] for row in rows}

    async def count_requests(self) -> int:
        return int(await self.reader.fetchval("SELECT COUNT(*) FROM requests"))

    async def cache_entries(self, key: str, now_utc: str) -> list[CacheEntry]:
        rows = await self.reader.fetch(dollar_params(SELECT_CACHE_ENTRIES), key, now_utc)
        return [cache_entry(row) for row in rows]

    # The reads in store/reads/ share the read pool: independent queries run concurrently.
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows as tuples. SQL in either placeholder style: ``?`` is rewritten, ``$n`` passes unchanged."""
        try:
            rows = await self.reader.fetch(dollar_params(sql), *params, timeout=self.read_timeout_s)
        except TimeoutError:
            raise StoreUnavailable(
                f"the database did not answer within {self.read_timeout_s:g} s; narrow the time range or the "
                "filters (a time range with at most one of model, user, path, prompt or a rolled-up property "
                "is answered from the rollups)",
                code="store_timeout",
            ) from None
        return [tuple(plain_value(value) for value in row.values()) for row in rows]

    async def stream(
        self, sql: str, params: Sequence[Any] = (), batch: int = 500
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Rows in batches from a server-side cursor, so an export of any size holds one batch in memory."""
        async with self.reader.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(dollar_params(sql), *params)
            while rows := await cursor.fetch(batch):
                yield [{key: plain_value(value) for key, value in row.items()} for row in rows]

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, on the read pool; SQL in either placeholder style."""
        rows = await self.reader.fetch(dollar_params(sql), *params)
        return [{key: plain_value(value) for key, value in row.items()} for row in rows]


class AsyncpgExecutor:
    """An asyncpg connection seen through ``Executor``, for ``PostgresStore.apply``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self.conn.execute(dollar_params(sql), *params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(dollar_params(sql), rows)

    async def changed(self, sql: str, params: Sequence[Any] = ()) -> int:
        status = await self.conn.execute(dollar_params(sql), *params)  # "DELETE 12", "INSERT 0 3"
        return int(status.rsplit(" ", 1)[-1])

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [
            tuple(plain_value(value) for value in row.values())
            for row in await self.conn.fetch(dollar_params(sql), *params)
        ]


async def _insert_requests_sql(conn: asyncpg.Connection[asyncpg.Record]) -> str:
    """The batch insert, typed from the live table so a migration that adds a column needs no edit here."""
    rows = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
        "WHERE attrelid = 'requests'::regclass AND attnum > 0 AND NOT attisdropped"
    )
    types = {row["attname"]: row["type"] for row in rows}
    missing = [name for name in REQUEST_COLUMNS if name not in types]
    if missing:
        raise RuntimeError(f"requests table lacks columns {missing}: a migration is missing")
    names = ", ".join(REQUEST_COLUMNS)
    arrays = ", ".join(f"${n}::{types[name]}[]" for n, name in enumerate(REQUEST_COLUMNS, start=1))
    picked = ", ".join(f"u.{name}" for name in REQUEST_COLUMNS)
    fresh = len(REQUEST_COLUMNS) + 1
    # row_number numbers repeats of one ID inside the batch; the lateral MAX continues from earlier batches.
    # A fresh ID (minted by the gateway) is attempt 1 without a lookup: the one-time filter skips the scan.
    return (
        f"INSERT INTO requests (attempt, {names}) "
        "SELECT CASE WHEN u.fresh THEN 1 ELSE COALESCE(p.max_attempt, 0) "
        f"+ row_number() OVER (PARTITION BY u.request_id ORDER BY u.ord) END, {picked} "
        f"FROM unnest({arrays}, ${fresh}::boolean[]) WITH ORDINALITY AS u({names}, fresh, ord) "
        "LEFT JOIN LATERAL (SELECT MAX(r.attempt) AS max_attempt FROM requests r "
        "WHERE NOT u.fresh AND r.request_id = u.request_id) p ON true ORDER BY u.ord"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
