from __future__ import annotations

import json
from importlib.resources import files

import pytest

from feedgate.logrows.pricing import Price, PriceTable, openai_uncached


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load()


def _name(table: PriceTable, model: str | None) -> str | None:
    hit = table.lookup(model)
    return None if hit is None else hit[0]


def test_exact_cost_gpt_4o(table: PriceTable) -> None:
    # gpt-4o: $2.50 in / $10.00 out per 1M -> 1000*2.5/1e6 + 500*10/1e6 = 0.0025 + 0.005
    assert table.cost_usd("gpt-4o", 1000, 500) == pytest.approx(0.0075)


def test_exact_cost_claude_sonnet_4_5(table: PriceTable) -> None:
    # $3 in / $15 out: 2_000_000*3/1e6 + 100_000*15/1e6 = 6.0 + 1.5
    assert table.cost_usd("claude-sonnet-4-5", 2_000_000, 100_000) == pytest.approx(7.5)


def test_case_insensitive_exact(table: PriceTable) -> None:
    assert _name(table, "GPT-4o-Mini") == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-2024-12-17", "o1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ],
)
def test_dated_snapshots(table: PriceTable, model: str, expected: str) -> None:
    assert _name(table, model) == expected


def test_explicit_snapshot_beats_family(table: PriceTable) -> None:
    # the first gpt-4o snapshot kept its launch price; exact match wins over the snapshot rule
    assert table.lookup("gpt-4o-2024-05-13") == ("gpt-4o-2024-05-13", Price(5.0, 15.0, None, None))


def test_snapshot_cost_anthropic(table: PriceTable) -> None:
    # claude-3-5-haiku $0.80 / $4.00: 10_000*0.8/1e6 + 2_000*4/1e6 = 0.008 + 0.008
    assert table.cost_usd("claude-3-5-haiku-20241022", 10_000, 2_000) == pytest.approx(0.016)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4", "gpt-4"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-audio-preview", None),
        ("gpt-4o-audio-preview-2024-12-17", None),
        ("gpt-4o-realtime-preview", None),
        ("gpt-4-32k-0613", "gpt-4-32k"),
        ("gpt-3.5-turbo-16k", None),
        ("gpt-4-1106-vision-preview", None),
        ("o1-mini-2024-09-12", "o1-mini"),
        ("gpt-4.1-nano", "gpt-4.1-nano"),
        ("gpt-5-1", None),
        ("claude-opus-4-7", None),
        ("claude-sonnet-4-5-foo", None),
    ],
)
def test_prefix_traps(table: PriceTable, model: str, expected: str | None) -> None:
    assert _name(table, model) == expected


def test_mini_snapshot_priced_as_mini(table: PriceTable) -> None:
    # gpt-4o-mini $0.15/$0.60: 1e6 in + 1e6 out = 0.75 (gpt-4o would be 12.5)
    assert table.cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)


@pytest.mark.parametrize("model", ["llama-3-70b", "gpt-6", "mistral-large-latest", "", None, "ft:gpt-4o:x::y"])
def test_unknown_model_is_none(table: PriceTable, model: str | None) -> None:
    assert table.lookup(model) is None
    assert table.cost_usd(model, 100, 100) is None


def test_provider_prefix(table: PriceTable) -> None:
    assert _name(table, "openai/gpt-4o-mini") == "gpt-4o-mini"
    assert _name(table, "anthropic/claude-3-5-sonnet-20240620") == "claude-3-5-sonnet"
    assert _name(table, "someproxy/gpt-4o") is None


def test_unknown_usage_is_none(table: PriceTable) -> None:
    assert table.cost_usd("gpt-4o", None, None) is None
    assert table.cost_usd("gpt-4o", None, None, cache_read_tokens=10) is None
    # one side missing counts as 0: 1000 out * $10 / 1e6
    assert table.cost_usd("gpt-4o", None, 1000) == pytest.approx(0.01)
    assert table.cost_usd("text-embedding-3-small", 1_000_000, None) == pytest.approx(0.02)


def test_cache_tokens_priced_anthropic(table: PriceTable) -> None:
    # claude-sonnet-4: in 3, out 15, cache_read 0.30, cache_write 3.75 (per 1M)
    # 1000*3 + 200*15 + 10_000*0.3 + 4000*3.75 = 3000 + 3000 + 3000 + 15000 = 24000 -> /1e6
    cost = table.cost_usd("claude-sonnet-4-20250514", 1000, 200, cache_read_tokens=10_000, cache_write_tokens=4000)
    assert cost == pytest.approx(0.024)


def test_cache_tokens_priced_openai(table: PriceTable) -> None:
    # gpt-4.1: in 2.00, cached 0.50, out 8.00. prompt_tokens=5000 of which 4000 cached.
    uncached = openai_uncached(5000, 4000)
    assert uncached == 1000
    # 1000*2 + 4000*0.5 + 100*8 = 2000 + 2000 + 800 = 4800 -> /1e6
    assert table.cost_usd("gpt-4.1", uncached, 100, cache_read_tokens=4000) == pytest.approx(0.0048)


def test_null_cache_price_falls_back_to_input(table: PriceTable) -> None:
    # gpt-4 has no cache price: cached tokens cost as input ($30): 1000*30/1e6
    assert table.cost_usd("gpt-4", 0, 0, cache_read_tokens=1000) == pytest.approx(0.03)


def test_openai_uncached() -> None:
    assert openai_uncached(None, 5) is None
    assert openai_uncached(100, None) == 100
    assert openai_uncached(100, 30) == 70
    assert openai_uncached(10, 30) == 0


def test_override_replaces_price() -> None:
    t = PriceTable.load({"GPT-4o": {"input": 1.0, "output": 2.0}})
    assert t.lookup("gpt-4o") == ("GPT-4o", Price(1.0, 2.0, None, None))
    # snapshots follow the override; 1e6*1 + 1e6*2 = 3.0
    assert t.cost_usd("gpt-4o-2024-11-20", 1_000_000, 1_000_000) == pytest.approx(3.0)
    # the provider group is kept for rows()
    assert ("openai", "GPT-4o", Price(1.0, 2.0, None, None)) in t.rows()
    # the shipped table is not mutated
    assert PriceTable.load().cost_usd("gpt-4o", 1_000_000, 0) == pytest.approx(2.5)


def test_extension_adds_model() -> None:
    t = PriceTable.load({"my-local-model": {"input": 0.5, "output": 1.0, "cache_read": 0.1}})
    assert t.lookup("my-local-model") == ("my-local-model", Price(0.5, 1.0, 0.1, None))
    # 2e6*0.5 + 1e6*1.0 + 1e6*0.1 = 1.0 + 1.0 + 0.1
    assert t.cost_usd("my-local-model", 2_000_000, 1_000_000, cache_read_tokens=1_000_000) == pytest.approx(2.1)
    assert ("custom", "my-local-model", Price(0.5, 1.0, 0.1, None)) in t.rows()
    assert len(t) == len(PriceTable.load()) + 1


@pytest.mark.parametrize(
    "bad",
    [
        {"input": 1.0},
        {"input": "1", "output": 2.0},
        {"input": -1.0, "output": 2.0},
        {"input": True, "output": 2.0},
        {"input": 1.0, "output": 2.0, "cache_reads": 0.1},
        {"input": float("nan"), "output": 2.0},
    ],
)
def test_bad_override_rejected(bad: dict[str, float | None]) -> None:
    with pytest.raises(ValueError):
        PriceTable.load({"x": bad})


def test_rows_sorted_non_empty(table: PriceTable) -> None:
    rows = table.rows()
    assert len(rows) > 20
    keys = [(p, m.lower()) for p, m, _ in rows]
    assert keys == sorted(keys)
    assert {p for p, _, _ in rows} == {"openai", "anthropic"}
    assert all(isinstance(price, Price) for _, _, price in rows)


def test_data_file_entries_numeric() -> None:
    data = json.loads(files("feedgate").joinpath("data/prices.json").read_text(encoding="utf-8"))
    assert isinstance(data["updated"], str) and data["updated"]
    assert isinstance(data["source"], str) and data["source"]
    assert set(data["providers"]) == {"openai", "anthropic"}
    seen: set[str] = set()
    for models in data["providers"].values():
        assert models
        for name, entry in models.items():
            assert name.lower() not in seen, name
            seen.add(name.lower())
            for field in ("input", "output"):
                assert isinstance(entry[field], int | float) and not isinstance(entry[field], bool), name
                assert entry[field] >= 0, name
            for field in ("cache_read", "cache_write"):
                assert entry.get(field) is None or isinstance(entry[field], int | float), name
            assert set(entry) <= {"input", "output", "cache_read", "cache_write"}, name


def test_required_models_present(table: PriceTable) -> None:
    for model in [
        "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4-turbo", "gpt-4",
        "gpt-3.5-turbo", "o1", "o1-mini", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano",
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
        "claude-3-haiku", "claude-3-5-haiku", "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4",
        "claude-opus-4", "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-opus",
    ]:  # fmt: skip
        assert _name(table, model) == model


def test_anthropic_cache_prices_follow_list_ratios(table: PriceTable) -> None:
    # Anthropic: 5-minute cache write = 1.25x input, cache read = 0.1x input. Claude 3 Haiku is the
    # published exception ($0.30 write, not $0.3125), so it is checked on its own.
    assert table.lookup("claude-3-haiku") == ("claude-3-haiku", Price(0.25, 1.25, 0.03, 0.30))
    for provider, model, p in table.rows():
        if model == "claude-3-haiku":
            continue
        if provider == "anthropic" and p.cache_read is not None and p.cache_write is not None:
            assert p.cache_write == pytest.approx(p.input * 1.25), model
            assert p.cache_read == pytest.approx(p.input * 0.1), model
