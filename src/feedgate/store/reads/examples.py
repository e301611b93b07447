"""Example thumbs-down requests for the groups insights names: what a reader opens to see why.

Those with a comment first (they say why), then the newest. One pass over the thumbs-down requests in
scope serves every dimension at once: each request row is looked up once (a user or a property is read from
the row, not from an index), where a query per dimension looked every row up again and a query per group made
a hundred groups queue for the read connections for seconds. The pass still grows with the thumbs-down in
scope (0.45 s at a million requests, 6 s at ten million over all time): bounding it by the rollups, which
know the hours where each group's thumbs-down are, is the next step (issue #15).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from feedgate.store.dialect import Frag, join
from feedgate.store.protocol import Store
from feedgate.store.reads.groups import LATEST, Dimension

Example = dict[str, str | None]


async def negative_examples(
    store: Store, wanted: Mapping[Dimension, Sequence[str]], where: Frag, limit: int
) -> dict[str, dict[str, list[Example]]]:
    """Up to ``limit`` thumbs-down requests of each wanted group (``{dimension: keys}``) among the requests
    ``where`` selects, as ``{dimension name: {key: examples}}``."""
    dims = [(dim, set(keys)) for dim, keys in wanted.items() if keys]
    out: dict[str, dict[str, list[Example]]] = {dim.name: {key: [] for key in keys} for dim, keys in dims}
    if not dims or limit <= 0:
        return out
    chosen = join(", ", [dim.key for dim, _ in dims])
    any_wanted = join(
        " OR ",
        [dim.key + Frag(f" IN ({', '.join('?' for _ in keys)})", tuple(sorted(keys))) for dim, keys in dims],
    )
    query = (
        Frag("SELECT r.request_id, f.comment, ")
        + chosen
        + Frag(
            " FROM feedback f JOIN requests r ON f.target_id = r.request_id "
            f"WHERE f.target_type = 'request' AND f.rating = 0 AND {LATEST} AND ("
        )
        + any_wanted
        + Frag(") AND (")
        + where
        + Frag(
            ") ORDER BY CASE WHEN f.comment IS NULL OR trim(f.comment) = '' THEN 1 ELSE 0 END, "
            "r.datetime_utc DESC, r.request_id DESC"
        )
    )
    slots = [(index, out[dim.name], keys) for index, (dim, keys) in enumerate(dims)]
    short = sum(len(keys) for _, keys in dims)
    for row in await store.fetch(query.sql, query.params):
        request_id, comment = row[0], row[1]
        for index, by_key, keys in slots:
            key = row[2 + index]
            if key in keys and len(examples := by_key[key]) < limit:
                examples.append({"request_id": request_id, "comment": comment})
                short -= len(examples) == limit
        if not short:
            break
    return out
