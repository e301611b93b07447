"""One contract, two stores: every assertion here runs on SQLite and on PostgreSQL alike.

PostgreSQL runs when FEEDGATE_TEST_POSTGRES_URL is set (``.ci/run`` sets it); each test gets a fresh schema.
Everything goes through the ``Store`` protocol: writes are ``WriteOp`` batches handed to ``apply``, reads
are the store's read methods and ``query`` with ``?`` placeholders, as the modules in ``store/`` write them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedgate.analysis.quality import group_stats
from feedgate.store.dialect import Frag
from feedgate.store.filters import compile_filter
from feedgate.store.migrations import MIGRATIONS
from feedgate.store.ops import REQUEST_COLUMNS, InsertRequest, PutFeedback, PutProperty, PutScores
from feedgate.store.postgres import PostgresStore
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import dimension
from feedgate.store.utc import utc_text
from pgschema import Schemas

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
EXPECTED_COLUMNS = {
    "requests": {"id", "attempt", *REQUEST_COLUMNS},
    "feedback_events": {
        "id",
        "target_type",
        "target_id",
        "kind",
        "rating",
        "signal",
        "comment",
        "user_id",
        "metadata_json",
        "source",
        "datetime_utc",
    },
    "feedback": {"target_type", "target_id", "rating", "comment", "user_id", "metadata_json", "datetime_utc"},
    "scores": {"request_id", "name", "value", "value_type", "datetime_utc"},
    "request_properties": {"request_id", "key", "value", "datetime_utc"},
    "console_sessions": {"session_hash", "key_id", "created_utc", "seen_utc", "expires_utc"},
}
# Every index on requests costs each logged row an insert; none is keyed by duration (m005 dropped those).
EXPECTED_REQUEST_INDEXES = {
    "requests_response_id",
    "requests_model_stats",
    "requests_request_id_model",
    "requests_retried",
    "requests_messages_fingerprint_time",
    "requests_time_ids",
    "requests_user_id",
    "requests_session_id",
    "requests_failed",
}


def at(seconds: float) -> str:
    return utc_text(T0 + timedelta(seconds=seconds))


def row(request_id: str, seconds: float = 0, signals: tuple[str, ...] = (), **fields: Any) -> InsertRequest:
    values: dict[str, Any] = dict.fromkeys(REQUEST_COLUMNS)
    values.update(
        request_id=request_id,
        datetime_utc=at(seconds),
        provider="openai",
        method="POST",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        is_stream=0,
        status=200,
        duration_ms=12.5,
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        cost_usd=0.0001,
        properties_json="{}",
        request_body=b'{"messages": []}',
        response_body=b'{"choices": []}',
        response_text="hi",
        body_bytes=30,
    )
    values.update(fields)
    return InsertRequest(tuple(values[name] for name in REQUEST_COLUMNS), derived_signals=signals)


def rating(target_id: str, value: bool | None, seconds: float = 0, **fields: Any) -> PutFeedback:
    return PutFeedback("request", target_id, "explicit", value, datetime_utc=at(seconds), **fields)


async def query(store: Store, sql: str, *params: Any) -> list[dict[str, Any]]:
    return await store.query(sql, params)


async def columns(store: Store, table: str) -> set[str]:
    if isinstance(store, PostgresStore):
        sql = "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"
        rows = await query(store, sql, store.schema, table)
    else:
        rows = await query(store, "SELECT name FROM pragma_table_info(?)", table)
    return {r["name"] for r in rows}


async def indexes(store: Store, table: str) -> set[str]:
    """Secondary indexes of ``table`` (not the primary key's)."""
    if isinstance(store, PostgresStore):
        sql = "SELECT indexname AS name FROM pg_indexes WHERE schemaname = ? AND tablename = ?"
        rows = await query(store, sql, store.schema or "public", table)
        return {r["name"] for r in rows} - {f"{table}_pkey"}
    rows = await query(store, "SELECT name FROM pragma_index_list(?) WHERE origin = 'c'", table)
    return {r["name"] for r in rows}


async def events(store: Store, target_id: str) -> list[tuple[Any, ...]]:
    rows = await query(
        store,
        "SELECT kind, rating, signal, comment, source FROM feedback_events WHERE target_id = ? ORDER BY id",
        target_id,
    )
    return [(r["kind"], r["rating"], r["signal"], r["comment"], r["source"]) for r in rows]


async def test_blank_database_migrates_to_the_expected_schema(store: Store) -> None:
    assert await store.applied_migrations() == sorted(step.name for step in MIGRATIONS)
    for table, expected in EXPECTED_COLUMNS.items():
        assert await columns(store, table) == expected, table
    assert await indexes(store, "requests") == EXPECTED_REQUEST_INDEXES
    assert "dataset_items_request_id" in await indexes(store, "dataset_items")  # retention's dataset check
    if not isinstance(store, PostgresStore):  # pruned pages go back to the file system in small steps
        assert (await query(store, "PRAGMA auto_vacuum"))[0]["auto_vacuum"] == 2
    await store.ping()
    assert await store.count_requests() == 0


async def test_reopening_applies_nothing_twice(store: Store, tmp_path: Path) -> None:
    await store.apply([row("kept")])
    await store.close()
    await store.open()
    assert await store.applied_migrations() == sorted(step.name for step in MIGRATIONS)
    assert await store.requests_exist(["kept"]) == {"kept"}


async def test_inserted_row_reads_back_with_the_same_values_and_types(store: Store) -> None:
    op = row("r-1", user_id="u1", is_stream=1, request_body=b"\x00\xffraw", ttft_ms=None, cost_usd=0.25)
    await store.apply([op])
    [stored] = await store.request_attempts("r-1")
    assert {name: stored[name] for name in REQUEST_COLUMNS} == dict(zip(REQUEST_COLUMNS, op.values, strict=True))
    assert stored["attempt"] == 1 and isinstance(stored["id"], int)
    assert type(stored["request_body"]) is bytes and type(stored["is_stream"]) is int
    assert type(stored["datetime_utc"]) is str and type(stored["cost_usd"]) is float
    assert await store.request_attempts("missing") == []
    assert await store.count_requests() == 1


async def test_attempts_are_numbered_per_request_id_within_and_across_batches(store: Store) -> None:
    await store.apply([row("dup", 0), row("other", 1), row("dup", 2)])
    await store.apply([row("dup", 3)])
    attempts = await store.request_attempts("dup")
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["datetime_utc"] for a in attempts] == [at(0), at(2), at(3)]
    assert [a["attempt"] for a in await store.request_attempts("other")] == [1]
    assert await store.count_requests() == 4


async def test_feedback_upsert_keeps_history_and_clear_removes_current(store: Store) -> None:
    await store.apply([row("fb")])
    await store.apply([rating("fb", True, 1, comment="great", user_id="u1")])
    await store.apply([rating("fb", False, 2, comment="wrong")])
    current = await query(store, "SELECT rating, comment, datetime_utc FROM feedback WHERE target_id = ?", "fb")
    assert current == [{"rating": 0, "comment": "wrong", "datetime_utc": at(2)}]
    await store.apply([rating("fb", None, 3)])
    assert await query(store, "SELECT * FROM feedback WHERE target_id = ?", "fb") == []
    assert await events(store, "fb") == [
        ("explicit", 1, None, "great", "api"),
        ("explicit", 0, None, "wrong", "api"),
        ("explicit", None, None, None, "api"),
    ]


async def test_ops_in_one_batch_apply_in_order(store: Store) -> None:
    await store.apply(
        [
            rating("batch", True, 1),
            PutScores("batch", {"accuracy": (0.5, "float")}, at(1)),
            rating("batch", None, 2),
            rating("batch", False, 3),
            PutScores("batch", {"accuracy": (0.9, "float")}, at(4)),
            row("batch", 5),
        ]
    )
    assert await query(store, "SELECT rating FROM feedback WHERE target_id = ?", "batch") == [{"rating": 0}]
    assert [e[1] for e in await events(store, "batch")] == [1, None, 0]
    assert await query(store, "SELECT value FROM scores WHERE request_id = ?", "batch") == [{"value": 0.9}]


async def test_implicit_signals_add_history_but_not_a_rating(store: Store) -> None:
    await store.apply([PutFeedback("request", "sig", "implicit", None, signal="copied", source="widget")])
    assert await events(store, "sig") == [("implicit", None, "copied", None, "widget")]
    assert await query(store, "SELECT * FROM feedback WHERE target_id = ?", "sig") == []


async def test_scores_latest_value_wins_per_name(store: Store) -> None:
    await store.apply([PutScores("s", {"accuracy": (0.5, "float"), "passed": (1.0, "bool")}, at(1))])
    await store.apply([PutScores("s", {"accuracy": (7.0, "int")}, at(2))])
    rows = await query(
        store, "SELECT name, value, value_type, datetime_utc FROM scores WHERE request_id = ? ORDER BY name", "s"
    )
    assert rows == [
        {"name": "accuracy", "value": 7.0, "value_type": "int", "datetime_utc": at(2)},
        {"name": "passed", "value": 1.0, "value_type": "bool", "datetime_utc": at(1)},
    ]


async def test_properties_upsert_per_key(store: Store) -> None:
    await store.apply([PutProperty("p", "feature", "chat", at(1)), PutProperty("p", "tier", "free", at(1))])
    await store.apply([PutProperty("p", "tier", "pro", at(2))])
    rows = await query(store, "SELECT key, value FROM request_properties WHERE request_id = ? ORDER BY key", "p")
    assert rows == [{"key": "feature", "value": "chat"}, {"key": "tier", "value": "pro"}]


async def test_feedback_before_its_request_is_pending_then_claimed(store: Store) -> None:
    await store.apply([rating("late", False, 1, comment="too slow")])
    assert await store.requests_exist(["late"]) == set()
    linked = (
        "SELECT r.request_id, r.attempt, f.rating, f.comment FROM requests r "
        "JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id WHERE r.request_id = ?"
    )
    assert await query(store, linked, "late") == []
    await store.apply([row("late", 2)])
    assert await store.requests_exist(["late"]) == {"late"}
    assert await query(store, linked, "late") == [
        {"request_id": "late", "attempt": 1, "rating": 0, "comment": "too slow"}
    ]


async def test_same_conversation_sent_again_marks_the_earlier_answer_regenerated(store: Store) -> None:
    same: dict[str, Any] = {"messages_fingerprint": "fp-1", "user_id": "u1"}
    await store.apply([row("first", 0, **same)])
    # Within the window: the earlier answer is marked, with the time of the new request.
    await store.apply([row("second", 60, **same)])
    # Another user, or no user or session at all, or after the window: nothing is marked.
    await store.apply([row("stranger", 90, messages_fingerprint="fp-1", user_id="u2")])
    await store.apply([row("anonymous", 95, messages_fingerprint="fp-1")])
    await store.apply([row("much-later", 60 + 601, **same)])
    await store.apply([row("dropped", 700, signals=("abandoned",))])
    assert await events(store, "first") == [("implicit", 0, "regenerated", None, "feedgate")]
    assert await events(store, "second") == []
    assert await events(store, "stranger") == []
    assert await events(store, "dropped") == [("implicit", 0, "abandoned", None, "feedgate")]
    when = await query(store, "SELECT datetime_utc FROM feedback_events WHERE target_id = ?", "first")
    assert when == [{"datetime_utc": at(60)}]


async def test_regenerated_within_one_batch_by_session(store: Store) -> None:
    same: dict[str, Any] = {"messages_fingerprint": "fp-2", "session_id": "s1"}
    await store.apply([row("a", 0, **same), row("b", 5, **same), row("c", 10, **same)])
    assert [e[2] for e in await events(store, "a")] == ["regenerated"]
    assert [e[2] for e in await events(store, "b")] == ["regenerated"]
    assert await events(store, "c") == []


async def test_regenerated_found_for_every_row_of_a_large_batch(store: Store) -> None:
    """A batch larger than one lookup statement holds (1,000 rows): every conversation sent again within the
    window marks its earlier answer, by user or by session; one sent again too late, or by someone else, not."""
    rows, again, not_again = [], [], []
    for n in range(700):
        who: dict[str, Any] = {"user_id": f"u{n}"} if n % 2 else {"session_id": f"s{n}"}
        fingerprint = f"fp-large-{n}"
        rows.append(row(f"first-{n}", n, messages_fingerprint=fingerprint, **who))
        if n % 7 == 0:  # after the window
            rows.append(row(f"late-{n}", n + 601, messages_fingerprint=fingerprint, **who))
            not_again.append(f"first-{n}")
        elif n % 7 == 1:  # the same conversation from another user
            rows.append(row(f"other-{n}", n + 5, messages_fingerprint=fingerprint, user_id=f"other-{n}"))
            not_again.append(f"first-{n}")
        else:
            rows.append(row(f"again-{n}", n + 5, messages_fingerprint=fingerprint, **who))
            again.append(f"first-{n}")
    await store.apply(rows)
    marked = await query(
        store, "SELECT target_id FROM feedback_events WHERE signal = ? ORDER BY target_id", "regenerated"
    )
    assert len(rows) > 1000
    assert [m["target_id"] for m in marked] == sorted(again)
    assert not set(not_again) & {m["target_id"] for m in marked}


async def test_requests_exist_answers_for_large_id_lists(store: Store) -> None:
    await store.apply([row(f"id-{n}", n) for n in range(0, 1200, 3)])
    asked = [f"id-{n}" for n in range(1200)] + ["id-0"]
    assert await store.requests_exist(asked) == {f"id-{n}" for n in range(0, 1200, 3)}
    assert await store.requests_exist([]) == set()


async def test_query_filters_and_aggregates_give_the_same_numbers(store: Store) -> None:
    await store.apply(
        [
            row("q1", 0, model="gpt-4o", input_tokens=10, duration_ms=10.0, cost_usd=0.5),
            row("q2", 10, model="gpt-4o", input_tokens=30, duration_ms=25.0, cost_usd=0.25),
            row("q3", 20, model="gpt-4o-mini", input_tokens=7, duration_ms=3.0, cost_usd=None),
            row("q4", 30, model="gpt-4o", status=500, input_tokens=99),
            row("q5", -100, model="gpt-4o", input_tokens=99),
        ]
    )
    sql = (
        "SELECT model, COUNT(*) AS n, SUM(input_tokens) AS tokens, AVG(duration_ms) AS avg_ms, "
        "AVG(input_tokens) AS avg_tokens, SUM(cost_usd) AS cost, MIN(datetime_utc) AS first "
        "FROM requests WHERE datetime_utc >= ? AND status = ? AND model <> 'what?' "
        "GROUP BY model ORDER BY model"
    )
    assert await query(store, sql, at(0), 200) == [
        {"model": "gpt-4o", "n": 2, "tokens": 40, "avg_ms": 17.5, "avg_tokens": 20.0, "cost": 0.75, "first": at(0)},
        {"model": "gpt-4o-mini", "n": 1, "tokens": 7, "avg_ms": 3.0, "avg_tokens": 7.0, "cost": None, "first": at(20)},
    ]
    limited = await query(store, "SELECT request_id FROM requests ORDER BY datetime_utc DESC LIMIT ? OFFSET ?", 2, 1)
    assert limited == [{"request_id": "q3"}, {"request_id": "q2"}]


async def test_export_rows_join_bodies_with_current_ratings(store: Store) -> None:
    await store.apply([row("good", 0, request_body=b'{"q": 1}'), row("bad", 1), row("unrated", 2)])
    await store.apply([rating("good", True, 3), rating("bad", False, 4)])
    sql = (
        "SELECT r.request_id, r.request_body, f.rating FROM requests r "
        "JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id "
        "WHERE f.rating = ? ORDER BY r.id"
    )
    assert await query(store, sql, 1) == [{"request_id": "good", "request_body": b'{"q": 1}', "rating": 1}]


async def test_two_instances_opening_a_blank_schema_together_migrate_once(pg_schemas: Schemas) -> None:
    url = pg_schemas.new_url()
    stores = [PostgresStore(url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for each in stores:
            assert await each.applied_migrations() == sorted(m.name for m in MIGRATIONS)
        await asyncio.gather(*(s.apply([row("shared", n)]) for n, s in enumerate(stores)))
        # Concurrent writers still number one request ID's attempts 1, 2, 3.
        assert sorted(a["attempt"] for a in await stores[0].request_attempts("shared")) == [1, 2, 3]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_analysis_reads_group_stats_with_the_same_numbers(store: Store) -> None:
    await store.apply(
        [
            row("a", 0, model="m1", duration_ms=10.0, cost_usd=0.25),
            row("b", 1, model="m1", duration_ms=20.0, cost_usd=0.5),
            row("c", 2, model="m1", duration_ms=30.0, cost_usd=None),
            row("d", 3, model="m2", duration_ms=5.0, cost_usd=None),
            row("e", 4, model="m2", duration_ms=100.0, cost_usd=None),
            row("e", 5, model="m2", duration_ms=7.0, cost_usd=None),  # the retry supersedes the first attempt
            rating("a", True),
            rating("b", False),
            rating("d", True),
            PutFeedback("request", "c", "implicit", True, signal="copied"),
            PutScores("a", {"accuracy": (0.5, "float")}),
            PutScores("b", {"accuracy": (1.0, "float")}),
        ]
    )
    groups, overall = await group_stats(
        store, dimension(store.dialect, "model"), compile_filter("all", store.dialect).where
    )
    by_key = {group.key: group for group in groups}
    m1, m2 = by_key["m1"], by_key["m2"]
    assert (m1.requests, m1.rated, m1.positive, m1.negative) == (3, 2, 1, 1)
    assert m1.scores == {"accuracy": 0.75} and m1.signals == {"copied": {"positive": 1, "negative": 0}}
    assert m1.cost_usd == 0.75 and m1.duration_ms_p50 == 20.0 and m1.duration_ms_p95 == pytest.approx(29.0)
    assert (m2.requests, m2.positive) == (2, 1) and m2.duration_ms_p50 == 6.0
    assert overall.requests == 5 and overall.rated == 3


async def test_helicone_filters_select_the_same_rows(store: Store) -> None:
    await store.apply(
        [
            row(
                "f1", 0, model="gpt-4o", status=200, properties_json='{"feature": "chat"}', response_text="Hello World"
            ),
            row("f2", 1, model="gpt-4o-mini", status=500, properties_json='{"feature": "search"}'),
            row("f3", 2, model="claude", status=200, input_tokens=3),
            rating("f1", True),
            PutScores("f2", {"accuracy": (0.9, "float")}),
            PutProperty("f3", "feature", "chat"),
        ]
    )

    async def ids(tree: Any) -> list[str]:
        query = Frag("SELECT r.request_id FROM requests r WHERE ") + compile_filter(tree, store.dialect).where
        query = query + Frag(" ORDER BY r.id")
        return [found[0] for found in await store.fetch(store.dialect.render(query.sql), query.params)]

    assert await ids("all") == ["f1", "f2", "f3"]
    assert await ids({"properties": {"feature": {"equals": "chat"}}}) == ["f1", "f3"]
    assert await ids({"request": {"model": {"like": "gpt-4o%"}}}) == ["f1", "f2"]
    assert await ids({"request": {"model": {"like": "GPT%"}}}) == []
    assert await ids({"response": {"text": {"contains": "hello"}}}) == ["f1"]
    assert await ids({"feedback": {"rating": {"equals": None}}}) == ["f2", "f3"]
    assert await ids({"scores": {"accuracy": {"gte": 0.5}}}) == ["f2"]
    assert await ids({"response": {"status": {"gte": "200.5"}}}) == ["f2"]
    both = {
        "left": {"response": {"status": {"equals": 200}}},
        "operator": "or",
        "right": {"feedback": {"rating": {"equals": True}}},
    }
    assert await ids(both) == ["f1", "f3"]


async def test_exports_stream_rows_in_batches(store: Store) -> None:
    await store.apply([row(f"x{n}", n, request_body=f'{{"n": {n}}}'.encode()) for n in range(7)])
    sql = store.dialect.render("SELECT request_id, request_body FROM requests WHERE datetime_utc >= ? ORDER BY id")
    batches = [batch async for batch in store.stream(sql, (at(2),), batch=2)]
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert batches[0][0] == {"request_id": "x2", "request_body": b'{"n": 2}'}
