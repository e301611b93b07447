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

from feedgate.store.dialect import Frag, join
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import Dimension

Example = dict[str, str | None]

_COMMENTED = "f.comment IS NOT NULL AND trim(f.comment) <> ''"
_UNCOMMENTED = "(f.comment IS NULL OR trim(f.comment) = '')"
_GROUPS_PER_READ = 16
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
        (dim, {key: out[dim.name][key] for key in keys[start : start + _GROUPS_PER_READ]})
        for dim, keys in ((dim, list(dict.fromkeys(keys))) for dim, keys in wanted.items())
        for start in range(0, len(keys), _GROUPS_PER_READ)
    ]
    await asyncio.gather(*(_fill(store, dim, by_key, where, limit) for dim, by_key in parts))
    return out


async def _fill(store: Store, dim: Dimension, by_key: dict[str, list[Example]], where: Frag, limit: int) -> None:
    """The commented thumbs-down of every group of ``dim``, then the others of the groups still short."""
    for comment in (_COMMENTED, _UNCOMMENTED):
        short = {key: limit - len(examples) for key, examples in by_key.items() if len(examples) < limit}
        if not short:
            return
        for key, request_id, text in await store.fetch(*_newest(dim, short, where, comment)):
            by_key[key].append({"request_id": request_id, "comment": text})


def _newest(dim: Dimension, wanted: Mapping[str, int], where: Frag, comment: str) -> tuple[str, tuple[object, ...]]:
    """One statement for all groups of a dimension (one round trip, one plan): a branch per group, each
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
