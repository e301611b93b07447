"""The answers behind the analysis endpoints and commands: request queries, stats, insights, regressions.

One implementation for both doors: the API handlers call these with the app's store, and the commands call
them with a store they open themselves (or ask a running gateway, which calls them). Inputs are the query
pairs of ``selection.py`` (or a Helicone query body); outputs are plain JSON-able dicts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedgate.analysis import grouped, rollup_answers
from feedgate.analysis.quality import group_stats
from feedgate.analysis.regressions import DEFAULT_NEGATIVE_SIGNALS, Regression
from feedgate.analysis.request_rows import annotated
from feedgate.analysis.selection import Selection, integer, number, parse_selection, single
from feedgate.config import AnalysisSettings
from feedgate.errors import BadRequest, FilterError, validation_message
from feedgate.store.datasets import notified_fingerprints
from feedgate.store.dialect import Frag
from feedgate.store.filters import and_all, check_text, compile_filter
from feedgate.store.ops import RecordAlerts, WriteOp
from feedgate.store.protocol import Store
from feedgate.store.reads.examples import negative_examples
from feedgate.store.reads.groups import Dimension, dimension
from feedgate.store.reads.requests import compile_sort, count_matching, page_annotations, request_page
from feedgate.store.reads.windows import (
    Rated,
    property_exists,
    rated_counts,
    recent_property_names,
    window_counts,
)
from feedgate.store.utc import utc_text

log = logging.getLogger("feedgate.reports")
Submit = Callable[[WriteOp], Awaitable[None]]


class QueryBody(BaseModel):
    """Helicone's ``RequestQueryParams``. Its flags this store has no use for are accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    filter: Any = "all"
    offset: int = Field(0, ge=0, le=10_000_000)
    limit: int = Field(10, ge=1, le=1000)
    sort: dict[str, Any] | None = None
    isCached: bool | None = None  # noqa: N815 (Helicone's names)
    includeInputs: bool | None = None  # noqa: N815
    isPartOfExperiment: bool | None = None  # noqa: N815
    isScored: bool | None = None  # noqa: N815


def query_body(raw: Any) -> QueryBody:
    try:
        return QueryBody.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from None


async def require_properties(store: Store, names: Iterable[str]) -> None:
    """A 400 naming the first property no request has: a typo must not look like "no data"."""
    for name in sorted(set(names)):
        if not await property_exists(store, name):
            raise FilterError(f"unknown property {name!r}: no logged request has it")


async def query_requests(store: Store, body: QueryBody) -> list[dict[str, Any]]:
    compiled = compile_filter(body.filter, store.dialect)
    order = compile_sort(body.sort, store.dialect)
    rows = await request_page(store, compiled.where, order, body.limit, body.offset)
    if not rows:
        await require_properties(store, compiled.properties)
    notes = await page_annotations(store, [row["request_id"] for row in rows])
    return [annotated(row, notes[row["request_id"]]) for row in rows]


async def count_requests(store: Store, body: QueryBody) -> int:
    compiled = compile_filter(body.filter, store.dialect)
    count = await count_matching(store, compiled.where)
    if not count:
        await require_properties(store, compiled.properties)
    return count


def _where(store: Store, selection: Selection, *extra: Any) -> tuple[Frag, frozenset[str]]:
    compiled = compile_filter(and_all([selection.tree(), *extra]), store.dialect)
    return compiled.where, compiled.properties


async def stats_report(
    store: Store, pairs: Iterable[tuple[str, str]], analysis: AnalysisSettings | None = None
) -> dict[str, Any]:
    """Per-group statistics; ``analysis`` says whether (and for which properties) rollups may answer."""
    selection, rest = parse_selection(pairs, extra=("group_by",))
    dim = dimension(store.dialect, single(rest, "group_by", "model") or "model")
    where, properties = _where(store, selection)
    found = await rollup_answers.plan(
        store,
        analysis or AnalysisSettings.model_validate({}),
        selection,
        [dim.name],
        selection.since,
        selection.until,
        latency=True,
    )
    if found is not None:
        groups, overall = await rollup_answers.stats(store, found, dim)
    else:
        groups, overall = await group_stats(store, dim, where)
    if not overall.requests:
        await require_properties(store, properties)
    if dim.name.startswith("property:") and all(g.key is None for g in groups):
        await require_properties(store, [dim.name[len("property:") :]])
    return {
        "group_by": dim.name,
        "filters": selection.describe(),
        "groups": [g.as_dict() for g in groups],
        "overall": overall.as_dict(),
        "source": _source(found),
    }


def _source(found: rollup_answers.RollupPlan | None) -> str:
    """Which path answered: ``rollup`` (whole hours from rollups, edge hours from rows) or ``rows``."""
    return "rows" if found is None else "rollup"


def _sources(plans: Iterable[rollup_answers.RollupPlan | None]) -> str:
    """``rollup`` when every part of an answer came from rollups; ``rows`` when any part was counted from rows."""
    return "rollup" if all(found is not None for found in plans) else "rows"


async def _plans(
    store: Store,
    settings: AnalysisSettings,
    selection: Selection,
    groups: list[str | None],
    since: str | None,
    until: str | None,
    cuts: list[str] | None = None,
) -> list[rollup_answers.RollupPlan | None]:
    """A plan per grouping: a dimension the rollups do not keep (a property not in ``analysis.properties``)
    is counted from rows without sending the others there too."""
    return [
        await rollup_answers.plan(store, settings, selection, [group], since, until, cuts or ()) for group in groups
    ]


async def _dimensions(store: Store, settings: AnalysisSettings, chosen: list[str], base: list[str]) -> list[Dimension]:
    names = chosen or [*base, *(f"property:{p}" for p in settings.properties or await recent_property_names(store))]
    return [dimension(store.dialect, name) for name in dict.fromkeys(names)]


def _alpha(rest: dict[str, list[str]], default: float) -> float:
    raw = single(rest, "alpha")
    value = default if raw is None else number(raw, "alpha")
    if not 0 < value < 1:
        raise FilterError(f"alpha must be between 0 and 1, got {value}")
    return value


async def insights_report(store: Store, settings: AnalysisSettings, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    selection, rest = parse_selection(pairs, extra=("by", "min_ratings", "alpha", "examples"))
    dims = await _dimensions(store, settings, rest.get("by", []), ["model", "prompt", "user"])
    min_ratings = integer(rest, "min_ratings", settings.min_ratings, 1, 10**9)
    alpha = _alpha(rest, settings.alpha)
    examples = integer(rest, "examples", 3, 0, 20)
    where, properties = _where(store, selection)
    plans = await _plans(store, settings, selection, [None, *(d.name for d in dims)], selection.since, selection.until)
    counted = await asyncio.gather(
        *(
            rollup_answers.rated(store, found, d) if found is not None else rated_counts(store, d, where)
            for found, d in zip(plans, [None, *dims], strict=True)
        )
    )
    total = counted[0].get(None, Rated())
    if not total.rated:
        await require_properties(store, properties)
    found_insights = grouped.poor_groups(
        {d.name: c for d, c in zip(dims, counted[1:], strict=True)}, total, min_ratings, alpha
    )
    by_name = {d.name: d for d in dims}
    wanted: dict[Dimension, list[str]] = {}
    for insight in found_insights:
        wanted.setdefault(by_name[insight.dimension], []).append(insight.key)
    found_examples = await negative_examples(store, wanted, where, examples)
    for insight in found_insights:
        insight.examples = found_examples.get(insight.dimension, {}).get(insight.key, [])
    return {
        "filters": selection.describe(),
        "dimensions": [d.name for d in dims],
        "min_ratings": min_ratings,
        "alpha": alpha,
        "overall": {
            "rated": total.rated,
            "negative": total.negative,
            "negative_rate": total.negative / total.rated if total.rated else None,
        },
        "insights": [i.as_dict() for i in found_insights],
        "source": _sources(plans),
    }


async def regressions_report(
    store: Store,
    settings: AnalysisSettings,
    pairs: Iterable[tuple[str, str]],
    now: datetime | None = None,
) -> dict[str, Any]:
    extra = ("by", "min_ratings", "alpha", "recent_days", "baseline_days", "signal")
    selection, rest = parse_selection(pairs, extra=extra)
    dims = await _dimensions(store, settings, rest.get("by", []), ["model", "prompt"])
    min_ratings = integer(rest, "min_ratings", settings.min_ratings, 1, 10**9)
    alpha = _alpha(rest, settings.alpha)
    recent = _days(rest, "recent_days", settings.recent_days)
    baseline = _days(rest, "baseline_days", settings.baseline_days)
    signals = sorted({check_text(name, "signal") for name in rest.get("signal", [])} or DEFAULT_NEGATIVE_SIGNALS)
    # The windows end with the current hour (everything logged so far) and are cut at whole hours, so the
    # rollups answer all of them and two calls in the same hour compare the same requests.
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    recent_from, baseline_from = end - recent, end - recent - baseline
    span = {"request": {"created_at": {"gte": utc_text(baseline_from)}}}
    until = {"request": {"created_at": {"lt": utc_text(end)}}}
    where, _properties = _where(store, selection, span, until)
    since = max(filter(None, (selection.since, utc_text(baseline_from))))
    upto = min(filter(None, (selection.until, utc_text(end))))
    split_at = utc_text(recent_from)
    plans = await _plans(store, settings, selection, [d.name for d in dims], since, upto, [split_at])
    counted = await asyncio.gather(
        *(
            rollup_answers.windows(store, found, d, split_at, signals)
            if found is not None
            else window_counts(store, d, where, split_at, signals)
            for found, d in zip(plans, dims, strict=True)
        )
    )
    regressions = grouped.regressions(
        {d.name: c for d, c in zip(dims, counted, strict=True)}, min_ratings, alpha, signals
    )
    return {
        "filters": selection.describe(),
        "dimensions": [d.name for d in dims],
        "baseline": {"from": utc_text(baseline_from), "to": utc_text(recent_from)},
        "recent": {"from": utc_text(recent_from), "to": utc_text(end)},
        "min_ratings": min_ratings,
        "alpha": alpha,
        "signals": signals,
        "regressions": [{**r.as_dict(), "summary": summary(r)} for r in regressions],
        "source": _sources(plans),
    }


def _days(rest: dict[str, list[str]], name: str, default: float) -> timedelta:
    raw = single(rest, name)
    value = default if raw is None else number(raw, name)
    if not 0 < value <= 3650:
        raise FilterError(f"{name} must be more than 0 and at most 3650, got {value}")
    return timedelta(days=value)


def summary(r: Regression) -> str:
    what = "positive rate" if r.metric == "positive_rate" else f"share of requests with signal {r.metric[7:]!r}"
    verb = "fell" if r.delta < 0 else "rose"
    return (
        f"{r.dimension} {r.key}: {what} {verb} from {r.baseline_rate:.1%} (n={r.baseline_n}) "
        f"to {r.recent_rate:.1%} (n={r.recent_n}), p={r.p_value:.2g}"
    )


async def notify_regressions(
    store: Store, submit: Submit, report: dict[str, Any], url: str, session: aiohttp.ClientSession
) -> dict[str, Any]:
    """POST each regression of ``report`` not notified before to ``url``; remember the ones delivered.

    A failed delivery is not remembered, so the next run tries again. Marks each regression with
    ``notified`` (sent by this run) and returns ``{"sent", "errors"}``.
    """
    found = report["regressions"]
    known = await notified_fingerprints(store, [r["fingerprint"] for r in found])
    sent: list[tuple[str, str, str, str, str]] = []
    errors: list[str] = []
    for item in found:
        item["notified"] = False
        if item["fingerprint"] in known:
            continue
        payload = orjson.dumps(
            {
                "event": "feedgate.regression",
                "regression": item,
                "recent": report["recent"],
                "baseline": report["baseline"],
            }
        )
        try:
            async with session.post(
                url, data=payload, headers={"Content-Type": "application/json"}, timeout=aiohttp.ClientTimeout(total=10)
            ) as answer:
                if answer.status >= 300:
                    raise RuntimeError(f"webhook answered {answer.status}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            errors.append(f"{item['fingerprint']}: {exc}")
            log.warning("regression webhook failed for %s: %s", item["summary"], exc)
            continue
        item["notified"] = True
        sent.append((item["fingerprint"], item["dimension"], item["key"], item["metric"], payload.decode()))
    if sent:
        await submit(RecordAlerts(sent))
    return {"sent": len(sent), "errors": errors}
