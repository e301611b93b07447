"""Counters and histograms kept as plain numbers, turned into Prometheus families when scraped.

Why not prometheus_client's ``Counter`` and ``Histogram``: each increment takes a lock (they may be shared
by threads), and a histogram's observe takes two, so counting one exchange cost about 13 µs, a twenty-fifth
of what feedgate spends on a call. feedgate counts on its event loop only (the writer counts exchanges,
the handlers count feedback), so a dictionary of floats does the job for under a microsecond. A scrape reads
a snapshot of each dictionary (``list(dict.items())`` copies it without letting another thread in between).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

Labels = tuple[str, ...]
Exported = list[Any]  # [label values, value]: a counter's float or a histogram's row, as another worker sent it


class CounterSeries:
    """One counter family: a value per label set."""

    __slots__ = ("name", "help", "label_names", "values")

    def __init__(self, name: str, help: str, label_names: tuple[str, ...]) -> None:
        self.name = name
        self.help = help
        self.label_names = label_names
        self.values: dict[Labels, float] = {}

    def add(self, labels: Labels, amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def merged(self, others: Iterable[Exported]) -> dict[Labels, float]:
        """This process's values plus other workers' (``SeriesCollector.export``): counters add up."""
        values = dict(self.values)
        for labels, value in others:
            key = tuple(labels)
            values[key] = values.get(key, 0.0) + float(value)
        return values

    def family(self, values: dict[Labels, float] | None = None) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=self.label_names)
        for labels, value in list((self.values if values is None else values).items()):
            family.add_metric(labels, value)
        return family


class HistogramSeries:
    """One histogram family: per label set, a count per bucket (not cumulative) and the sum."""

    __slots__ = ("name", "help", "label_names", "bounds", "_le", "values")

    def __init__(self, name: str, help: str, label_names: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name = name
        self.help = help
        self.label_names = label_names
        self.bounds = bounds
        self._le = [repr(float(bound)) for bound in bounds] + ["+Inf"]  # "0.05", "1.0": as prometheus_client
        # Per label set: len(bounds) + 1 bucket counts (the last is +Inf), then the sum of the values.
        self.values: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        row = self.values.get(labels)
        if row is None:
            row = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        # The first bound >= value: Prometheus buckets hold the values less than or equal to their bound.
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def merged(self, others: Iterable[Exported]) -> dict[Labels, list[float]]:
        """This process's rows plus other workers': bucket counts and sums add up element by element."""
        values = {labels: list(row) for labels, row in list(self.values.items())}
        width = len(self.bounds) + 2
        for labels, row in others:
            if len(row) != width:  # a worker of another version with other buckets: not comparable
                continue
            key = tuple(labels)
            mine = values.setdefault(key, [0.0] * width)
            for index, count in enumerate(row):
                mine[index] += count
        return values

    def family(self, values: dict[Labels, list[float]] | None = None) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=self.label_names)
        for labels, row in list((self.values if values is None else values).items()):
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for le, count in zip(self._le, row, strict=False):
                running += count
                buckets.append((le, running))
            family.add_metric(labels, buckets, sum_value=row[-1])
        return family


class SeriesCollector:
    """A registry collector serving the families it holds, in the order given.

    With ``feedgate serve --workers N``, ``others`` holds the other workers' ``export()`` for the length of one
    scrape (set and cleared around the synchronous encoding), so the worker that answers speaks for all.
    """

    def __init__(self, series: list[CounterSeries | HistogramSeries]) -> None:
        self._series = series
        self.others: list[dict[str, list[Exported]]] = []

    def export(self) -> dict[str, list[Exported]]:
        """Every series' values as JSON-ready lists, for another worker to add to its own."""
        return {
            series.name: [[list(labels), value] for labels, value in list(series.values.items())]
            for series in self._series
        }

    def collect(self) -> Iterator[Metric]:
        for series in self._series:
            if not self.others:
                yield series.family()
                continue
            theirs = [row for exported in self.others for row in exported.get(series.name, [])]
            if isinstance(series, CounterSeries):  # two branches, so each kind gets rows of its own shape
                yield series.family(series.merged(theirs))
            else:
                yield series.family(series.merged(theirs))
