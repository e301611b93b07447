"""The metric reference, the Grafana dashboard and the alert rules name only metrics feedgate serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import yaml

from conftest import Gateway
from feedgate.ops.metrics import METRICS
from feedgate.ops.reference import END, FILES, START, exposed_names, markdown
from scraping import scrape

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\b((?:feedgate|process|python)_[a-z_]+)\b")
# Names PromQL queries may use besides feedgate's: Prometheus's own up, and the process collectors'.
PROCESS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "up"}


def known_names() -> set[str]:
    return {name for spec in METRICS for name in exposed_names(spec.name, spec.kind)} | PROCESS


def promql_names(expr: str) -> set[str]:
    return set(NAME.findall(expr))


def test_generated_metric_reference_is_current() -> None:
    for name in FILES:
        text = (ROOT / name).read_text(encoding="utf-8")
        block = text.split(START, 1)[1].split(END, 1)[0].strip()
        assert block == markdown(), f"{name}: metric reference is stale: run python -m feedgate.ops.reference"


async def test_every_declared_metric_is_served_with_its_type(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        await api.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    await gateway.settled()
    m = await scrape(gateway)
    for spec in METRICS:
        family = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
        assert m.types.get(family) == spec.kind, spec.name
    served = {family for family in m.types if family.startswith("feedgate_")}
    declared = {spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name for spec in METRICS}
    assert served == declared
    assert {"process_cpu_seconds", "process_resident_memory_bytes"} <= set(m.types)


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_grafana_dashboard_queries_real_metrics() -> None:
    dashboard = json.loads((ROOT / "docs" / "grafana" / "feedgate.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] == "feedgate" and dashboard["schemaVersion"] >= 36
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    exprs += [variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable]
    assert len(exprs) > 20
    used: set[str] = set()
    for expr in exprs:
        names = promql_names(expr)
        assert names, expr
        assert names <= known_names(), f"{expr}: {names - known_names()}"
        assert expr.count("(") == expr.count(")"), expr
        used |= names
    # The panels: traffic, latency and TTFT, tokens and cost, errors, log queue and loss, feedback.
    for name in (
        "feedgate_requests_total",
        "feedgate_request_duration_seconds_bucket",
        "feedgate_time_to_first_token_seconds_bucket",
        "feedgate_tokens_total",
        "feedgate_cost_usd_total",
        "feedgate_upstream_errors_total",
        "feedgate_log_queue_depth",
        "feedgate_log_rows_dropped_total",
        "feedgate_feedback_total",
    ):
        assert name in used, name
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_alert_rules_parse_and_use_real_metrics() -> None:
    rules = yaml.safe_load((ROOT / "docs" / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"FeedgateLogRowsDropped", "FeedgateLogQueueFilling", "FeedgateUpstreamErrorRatio"} <= names
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
        found = promql_names(rule["expr"])
        assert found and found <= known_names(), f"{rule['alert']}: {found - known_names()}"
        assert rule["expr"].count("(") == rule["expr"].count(")")
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])
