"""Example thumbs-down requests for the groups insights names: what a reader opens to see why.

Those with a comment first (they say why), then the newest. Each group is read newest first and the read
stops at ``limit``: first its commented thumbs-down, then, for a group with fewer, its others. A group's
newest requests are found through its index (user, model) or the time index, so the cost grows with how far
back a group's examples lie, not with the thumbs-down in the store: one pass over every thumbs-down in scope,
sorted, took 0.5 s at a million requests and 6 s at ten million.

Latest attempts only, checked per row (a later attempt of the same request ID supersedes it): the shared
list of superseded IDs costs about 30 ms to build, once per statement, where a group reads a few hundred rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from feedgate.store.dialect import Frag, join
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import Dimension

Example = dict[str, str | None]

_COMMENTED = "f.comment IS NOT NULL AND trim(f.comment) <> ''"
_UNCOMMENTED = "(f.comment IS NULL OR trim(f.comment) = '')"
_GROUPS_PER_READ = 16
# A dimension read in one pass (PostgreSQL, a prompt or a property) is first walked newest first through the
# time index, this many requests, then four times as many: flagged groups are usually common, and fill within
# it (at a million requests, 2,000 requests held three commented thumbs-down for each of three prompts:
# 7 ms, where the one pass read all 15,105 commented thumbs-down in 130-200 ms). The groups still short are
# then read in one pass over the older requests, so a walk never costs much more than the pass alone.
_WALK_BATCHES = (2_000, 8_000)
_NOT_SUPERSEDED = "NOT EXISTS (SELECT 1 FROM requests n WHERE n.request_id = r.request_id AND n.attempt > r.attempt)"


async def negative_examples(
    store: Store, wanted: Mapping[Dimension, Sequence[str]], where: Frag, limit: int
) -> dict[str, dict[str, list[Example]]]:
    """Up to ``limit`` thumbs-down requests of each wanted group (``{dimension: keys}``) among the requests
    ``where`` selects, as ``{dimension name: {key: examples}}``."""
    out: dict[str, dict[str, list[Example]]] = {dim.name: {key: [] for key in keys} for dim, keys in wanted.items()}
    if limit <= 0:
        return out
    # Statements of a few groups each, so that the read connections work on them side by side.
    parts = [
        (dim, {key: out[dim.name][key] for key in keys[start : start + _per_read(store, dim)]})
        for dim, keys in ((dim, list(dict.fromkeys(keys))) for dim, keys in wanted.items())
        for start in range(0, len(keys), _per_read(store, dim))
    ]
    await asyncio.gather(*(_fill(store, dim, by_key, where, limit) for dim, by_key in parts))
    return out


def _one_pass(store: Store, dim: Dimension) -> bool:
    """Whether the groups of ``dim`` are read together (``_walk_then_pass``), not walked group by group.

    PostgreSQL cannot estimate how many requests an expression such as a prompt's or a property's key
    selects, so for a group walk it starts from the feedback anyway, and reads every thumbs-down once per
    group (0.1 s each at a million requests): all groups of the dimension at once cost the same as one.
    A user's and a model's requests have an index of their own, which it does walk.
    """
    return store.dialect.name == "postgres" and dim.name not in ("user", "model")


def _per_read(store: Store, dim: Dimension) -> int:
    return 10**6 if _one_pass(store, dim) else _GROUPS_PER_READ


async def _fill(store: Store, dim: Dimension, by_key: dict[str, list[Example]], where: Frag, limit: int) -> None:
    """The commented thumbs-down of every group of ``dim``, then the others of the groups still short."""
    for comment in (_COMMENTED, _UNCOMMENTED):
        short = {key: limit - len(examples) for key, examples in by_key.items() if len(examples) < limit}
        if not short:
            return
        if _one_pass(store, dim):
            found = await _walk_then_pass(store, dim, short, where, comment)
        else:
            found = await store.fetch(*_newest(dim, short, where, comment))
        for key, request_id, text in found:
            if len(examples := by_key[key]) < limit:
                examples.append({"request_id": request_id, "comment": text})


async def _walk_then_pass(
    store: Store, dim: Dimension, wanted: Mapping[str, int], where: Frag, comment: str
) -> list[tuple[Any, ...]]:
    """The thumbs-down of the wanted groups newest first: walked a batch of requests at a time
    (``_WALK_BATCHES``), then, for the groups still short, one pass over the requests older than the walk."""
    short = dict(wanted)
    found: list[tuple[Any, ...]] = []
    scope = where
    for batch in _WALK_BATCHES:
        rows = await store.fetch(*_walk(dim, list(short), scope, comment, batch))
        edge = next(row for row in rows if row[0])
        for _edge, key, request_id, text, *_ in rows:
            if _edge or key not in short:
                continue
            found.append((key, request_id, text))
            short[key] -= 1
            if short[key] <= 0:
                del short[key]
        _, _, last_id, _, last_utc, walked = edge
        if not short or walked < batch:  # every group filled, or every request in scope walked
            return found
        older = Frag("r.datetime_utc <= ? AND (r.datetime_utc < ? OR r.request_id < ?)", (last_utc, last_utc, last_id))
        scope = where.wrap("(", ") AND ") + older
    return found + await store.fetch(*_all_newest(dim, short, scope, comment))


def _walk(dim: Dimension, keys: Sequence[str], where: Frag, comment: str, batch: int) -> tuple[str, tuple[object, ...]]:
    """The next ``batch`` requests ``where`` selects, newest first, and those of them that are thumbs-down of
    the wanted groups; one more row (``edge`` true) says where the walk stopped and how many it read.

    The walked requests are kept narrow (time, ID, attempt, group key) in a materialized CTE: the planner
    then walks the time index and only looks the walked requests up in the feedback, where a join it
    planned itself started from every thumbs-down (it cannot estimate how many requests a key selects).
    """
    query = (
        Frag("WITH w AS MATERIALIZED (SELECT r.datetime_utc, r.request_id, r.attempt, ")
        + dim.key
        + Frag(" AS group_key FROM requests r WHERE ")
        + where.wrap("(", ")")
        + Frag(
            " ORDER BY r.datetime_utc DESC, r.request_id DESC LIMIT ?) "
            "SELECT false AS edge, r.group_key, r.request_id, f.comment, r.datetime_utc, 0 AS walked "
            "FROM w r JOIN feedback f ON f.target_type = 'request' AND f.target_id = r.request_id "
            f"WHERE f.rating = 0 AND {comment} AND {_NOT_SUPERSEDED} AND r.group_key IN "
            f"({', '.join('?' for _ in keys)}) ",
            (batch, *keys),
        )
        + Frag(
            "UNION ALL SELECT true, NULL, e.request_id, NULL, e.datetime_utc, (SELECT COUNT(*) FROM w) "
            "FROM (SELECT 1 AS one) o LEFT JOIN "
            "(SELECT request_id, datetime_utc FROM w ORDER BY datetime_utc, request_id LIMIT 1) e ON true "
            "ORDER BY 1, 5 DESC, 3 DESC"
        )
    )
    return query.sql, query.params


def _all_newest(dim: Dimension, wanted: Mapping[str, int], where: Frag, comment: str) -> tuple[str, tuple[object, ...]]:
    """Every thumbs-down of the wanted groups of a dimension, newest first (the caller keeps each group's)."""
    keys = list(wanted)
    query = (
        Frag("SELECT ")
        + dim.key
        + Frag(
            " AS group_key, r.request_id, f.comment FROM feedback f JOIN requests r ON f.target_id = r.request_id "
            f"WHERE f.target_type = 'request' AND f.rating = 0 AND {comment} AND {_NOT_SUPERSEDED} AND "
        )
        + dim.key
        + Frag(f" IN ({', '.join('?' for _ in keys)}) AND (", tuple(keys))
        + where
        + Frag(") ORDER BY r.datetime_utc DESC, r.request_id DESC")
    )
    return query.sql, query.params


def _newest(dim: Dimension, wanted: Mapping[str, int], where: Frag, comment: str) -> tuple[str, tuple[object, ...]]:
    """One statement for several groups of a dimension (one round trip, one plan): a branch per group, each
    reading that group's newest thumbs-down up to its count.

    CROSS JOIN keeps the requests as the outer loop on SQLite (PostgreSQL reads it as an inner join): each
    branch reads newest first through an index and ends at its count, where starting from the feedback
    would read every thumbs-down in the store first.
    """
    branches = [
        Frag(
            "SELECT * FROM (SELECT ? AS group_key, r.request_id, f.comment FROM requests r CROSS JOIN feedback f ",
            (key,),
        )
        + Frag(
            "WHERE f.target_type = 'request' AND f.target_id = r.request_id AND f.rating = 0 AND "
            f"{comment} AND {_NOT_SUPERSEDED} AND "
        )
        + dim.key
        + Frag(" = ? AND (", (key,))
        + where
        + Frag(f") ORDER BY r.datetime_utc DESC, r.request_id DESC LIMIT ?) AS g{index}", (count,))
        for index, (key, count) in enumerate(wanted.items())
    ]
    query = join(" UNION ALL ", branches)
    return query.sql, query.params
