"""``feedgate rollups check`` finds sums that disagree with the rows, and ``feedgate rollups rebuild`` fixes them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from feedgate.cli import main


def test_check_finds_a_wrong_sum_and_rebuild_repairs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "demo.db"
    url = f"sqlite:///{path}"
    assert main(["demo", "--requests", "300", "--days", "2", "--database-url", url, "--json"]) == 0
    capsys.readouterr()
    assert main(["rollups", "check", "--hours", "100", "--database-url", url]) == 0
    assert "rollups match the rows" in capsys.readouterr().out

    with sqlite3.connect(path) as db:  # a sum gone wrong, as a bug or a hand edit would leave it
        hour = db.execute("SELECT MIN(hour_utc) FROM rollup_cells WHERE dimension = 'model'").fetchone()[0]
        db.execute(
            "UPDATE rollup_cells SET positive = positive + 3 WHERE dimension = 'model' AND hour_utc = ?", (hour,)
        )
    assert main(["rollups", "check", "--hours", "100", "--database-url", url]) == 1
    out = capsys.readouterr().out
    assert f"model {hour}" in out and "positive" in out and "run feedgate rollups rebuild" in out

    assert main(["rollups", "rebuild", "--since", "3d", "--database-url", url]) == 0
    assert "rollups rebuilt" in capsys.readouterr().out
    assert main(["rollups", "check", "--hours", "100", "--database-url", url]) == 0


def test_bad_arguments_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'fg.db'}"
    assert main(["rollups", "rebuild", "--since", "last tuesday", "--database-url", url]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["rollups", "check", "--hours", "0", "--database-url", url]) == 2
    assert main(["rollups", "rebuild", "--database-url", url, "--set", "analysis.rollups=false"]) == 2
    assert "analysis.rollups is false" in capsys.readouterr().err
