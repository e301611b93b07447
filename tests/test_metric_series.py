"""The counts behind ``/metrics`` as Prometheus reads them: bucket bounds, cumulative buckets, sums."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from feedgate.ops.series import CounterSeries, HistogramSeries, SeriesCollector


def exposed(*series: CounterSeries | HistogramSeries) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(SeriesCollector(list(series)))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_value_on_a_bound_is_in_that_bucket_and_buckets_are_cumulative() -> None:
    latency = HistogramSeries("demo_seconds", "Demo.", ("route",), (0.1, 1.0, 10.0))
    for value in (0.05, 0.1, 0.5, 1.0, 20.0):
        latency.observe(("chat",), value)
    samples = exposed(latency)

    def bucket(le: str) -> float:
        return samples["demo_seconds_bucket", (("le", le), ("route", "chat"))]

    assert [bucket(le) for le in ("0.1", "1.0", "10.0", "+Inf")] == [2, 4, 4, 5]
    assert samples["demo_seconds_count", (("route", "chat"),)] == 5
    assert samples["demo_seconds_sum", (("route", "chat"),)] == 21.65


def test_counters_add_per_label_set_and_keep_their_names() -> None:
    calls = CounterSeries("demo_calls", "Demo.", ("model",))
    calls.add(("a",))
    calls.add(("a",), 2.5)
    calls.add(("b",))
    samples = exposed(calls)
    assert samples["demo_calls_total", (("model", "a"),)] == 3.5
    assert samples["demo_calls_total", (("model", "b"),)] == 1


def test_another_workers_series_add_to_this_ones() -> None:
    """With --workers N, the worker answering a scrape adds the others' exported values to its own."""
    requests = CounterSeries("feedgate_requests", "Calls.", ("status",))
    duration = HistogramSeries("feedgate_request_duration_seconds", "Time.", ("status",), (0.1, 1.0))
    requests.add(("200",), 3)
    duration.observe(("200",), 0.05)
    collector = SeriesCollector([requests, duration])
    other_requests = CounterSeries("feedgate_requests", "Calls.", ("status",))
    other_duration = HistogramSeries("feedgate_request_duration_seconds", "Time.", ("status",), (0.1, 1.0))
    other_requests.add(("200",), 2)
    other_requests.add(("429",), 1)
    other_duration.observe(("200",), 0.5)
    other_duration.observe(("429",), 5.0)
    exported = orjson.loads(orjson.dumps(SeriesCollector([other_requests, other_duration]).export()))
    collector.others = [exported]
    merged = {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    assert merged["feedgate_requests_total[('status', '200')]"] == 5
    assert merged["feedgate_requests_total[('status', '429')]"] == 1
    assert merged["feedgate_request_duration_seconds_count[('status', '200')]"] == 2
    assert merged["feedgate_request_duration_seconds_bucket[('le', '0.1'), ('status', '200')]"] == 1
    assert merged["feedgate_request_duration_seconds_bucket[('le', '1.0'), ('status', '200')]"] == 2
    assert merged["feedgate_request_duration_seconds_sum[('status', '200')]"] == 0.55
    assert merged["feedgate_request_duration_seconds_count[('status', '429')]"] == 1
    collector.others = []
    alone = {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
    assert alone["feedgate_requests_total[('status', '200')]"] == 3  # this worker's own values are untouched
