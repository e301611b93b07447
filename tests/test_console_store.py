"""The console's reads and writes on both stores: sessions, cursor pages, neighbours in a list, signals."""

from __future__ import annotations

from feedgate.store.console_sessions import console_session
from feedgate.store.filters import compile_filter
from feedgate.store.ops import CloseConsoleSession, OpenConsoleSession, PutFeedback, TouchConsoleSession
from feedgate.store.protocol import Store
from feedgate.store.reads.feedback import signals_for
from feedgate.store.reads.groups import aggregate_query, dimension
from feedgate.store.reads.requests import adjacent_request, requests_before
from test_store_contract import at, row


async def test_sessions_open_touch_close_and_expired_ones_go(store: Store) -> None:
    await store.apply([OpenConsoleSession("old", "k1", expires_utc=at(10), datetime_utc=at(0))])
    await store.apply([OpenConsoleSession("new", "k2", expires_utc=at(5000), datetime_utc=at(100))])
    assert await console_session(store, "old") is None  # past its absolute expiry when the next one opened
    found = await console_session(store, "new")
    assert found == {"key_id": "k2", "created_utc": at(100), "seen_utc": at(100), "expires_utc": at(5000)}
    await store.apply([TouchConsoleSession("new", at(200))])
    await store.apply([TouchConsoleSession("new", at(150))])  # an older touch never moves it back
    found = await console_session(store, "new")
    assert found is not None and found["seen_utc"] == at(200)
    await store.apply([CloseConsoleSession("new")])
    assert await console_session(store, "new") is None


async def test_cursor_pages_and_neighbours_follow_the_filter(store: Store) -> None:
    # Two rows share a second: the row number breaks the tie, so no row is skipped or shown twice.
    rows = [row(f"r{i}", seconds=i // 2, model="m-even" if i % 2 == 0 else "m-odd") for i in range(10)]
    await store.apply(rows)
    everything = compile_filter("all", store.dialect).where
    seen: list[str] = []
    before = None
    while True:
        page = await requests_before(store, everything, before, 3)
        if not page:
            break
        seen += [r["request_id"] for r in page]
        before = (page[-1]["datetime_utc"], page[-1]["id"])
    assert seen == [f"r{i}" for i in range(9, -1, -1)]
    even = compile_filter({"request": {"model": {"equals": "m-even"}}}, store.dialect).where
    first = (await requests_before(store, even, None, 10))[2]
    assert first["request_id"] == "r4"
    position = (first["datetime_utc"], first["id"])
    assert await adjacent_request(store, even, position, newer=True) == "r6"
    assert await adjacent_request(store, even, position, newer=False) == "r2"
    last = (await requests_before(store, even, None, 10))[-1]
    assert await adjacent_request(store, even, (last["datetime_utc"], last["id"]), newer=False) is None


async def test_signals_are_counted_per_request(store: Store) -> None:
    await store.apply([row("s1"), row("s2")])
    signal = [PutFeedback("request", "s1", "implicit", False, signal="regenerated") for _ in range(2)]
    signal.append(PutFeedback("request", "s1", "implicit", True, signal="copied"))
    signal.append(PutFeedback("request", "s2", "explicit", True))  # a rating is not a signal
    await store.apply(signal)
    assert await signals_for(store, ["s1", "s2", "s3"]) == {"s1": {"copied": 1, "regenerated": 2}}
    assert await signals_for(store, []) == {}


async def test_feedback_joins_look_requests_up_by_id_whatever_the_filter(store: Store) -> None:
    """A model filter must not make SQLite walk every request of that model once per feedback row.

    That plan took 386 s for the stats of one model by day at 100,000 requests (the overview's chart asks for
    exactly that); looked up by request ID it took 0.07 s.
    """
    where = compile_filter({"request": {"model": {"equals": "m"}}}, store.dialect).where
    day = dimension(store.dialect, "day")
    for source in ("ratings", "signals", "scores"):
        query = aggregate_query(day.key, source, where, superseded=False, dialect=store.dialect)
        if store.dialect.name == "sqlite":
            plan = await store.fetch("EXPLAIN QUERY PLAN " + query.sql, query.params)
            steps = [str(step[3]) for step in plan]
            assert any("SEARCH r USING" in s and "requests_request_id_model (request_id=?" in s for s in steps), steps
        assert await store.fetch(query.sql, query.params) == []  # and it runs, on both stores


async def test_a_failed_status_list_reads_only_failed_calls(store: Store) -> None:
    """``status=5xx`` with no failed calls must not walk every request of the range (1.4 s at 1M on SQLite):
    its comparison carries the literal term that lets the planner take the partial index of failed calls."""
    await store.apply(
        [row(f"ok{i}", seconds=i) for i in range(30)] + [row("e1", seconds=5, status=503), row("t1", 7, status=429)]
    )
    five = {"response": {"status": {"gte": 500}}}, {"response": {"status": {"lt": 600}}}
    tree = {"left": five[0], "operator": "and", "right": five[1]}
    where = compile_filter(tree, store.dialect).where
    assert [r["request_id"] for r in await requests_before(store, where, None, 50)] == ["e1"]
    four = compile_filter({"response": {"status": {"equals": 429}}}, store.dialect).where
    assert [r["request_id"] for r in await requests_before(store, four, None, 50)] == ["t1"]
    ok = compile_filter({"response": {"status": {"gt": 199}}}, store.dialect).where
    assert len(await requests_before(store, ok, None, 50)) == 32
    if store.dialect.name == "sqlite":
        query = f"EXPLAIN QUERY PLAN SELECT r.id FROM requests r WHERE {where.sql} ORDER BY r.datetime_utc DESC"
        steps = [str(step[3]) for step in await store.fetch(query, where.params)]
        assert any("requests_failed" in s for s in steps), steps
