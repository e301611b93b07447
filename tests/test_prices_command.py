"""``feedgate prices``: the table in effect, with config overrides, and how names resolve."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from feedgate.cli import main


def test_lists_the_shipped_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["provider", "model", "input", "output", "cache_read", "cache_write"]
    assert any(line.split()[:4] == ["openai", "gpt-4o", "2.5", "10"] for line in out.splitlines())
    assert "anthropic" not in out


def test_config_overrides_show_and_names_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "feedgate.yaml"
    config.write_text("prices:\n  my-finetune: {input: 1.5, output: 3}\n  gpt-4o: {input: 2, output: 8}\n")
    code = main(["prices", "--config", str(config), "--json", "my-finetune", "gpt-4o-2024-11-20", "nope-model"])
    assert code == 1  # one name has no price
    data = orjson.loads(capsys.readouterr().out)
    rows = {row["model"]: row for row in data["prices"]}
    assert rows["my-finetune"]["input"] == 1.5 and rows["my-finetune"]["provider"] == "custom"
    assert rows["gpt-4o-2024-11-20"]["matched"] == "gpt-4o" and rows["gpt-4o-2024-11-20"]["output"] == 8
    assert rows["nope-model"]["matched"] is None
    assert main(["prices", "--config", str(config), "my-finetune"]) == 0


def test_bad_price_config_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "feedgate.yaml"
    config.write_text("prices:\n  m: {input: -1, output: 3}\n")
    assert main(["prices", "--config", str(config)]) == 2
    assert "prices.m.input" in capsys.readouterr().err
