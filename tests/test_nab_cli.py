"""``novacron nab``: the table on a slice of the real corpus, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novacron.app.cli import main
from tests.test_bad_input import assert_one_line_exit_2
from tests.test_nab_scoring import nab_corpus


def tiny_corpus(tmp_path: Path, csv_text: str, windows: object) -> Path:
    (tmp_path / "data" / "g").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    (tmp_path / "data" / "g" / "s.csv").write_text(csv_text)
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return tmp_path


def test_nab_prints_the_three_profiles_and_the_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nab.md"
    code = main(["nab", str(nab_corpus()), "--only", "art_daily_jumpsup", "art_daily_no_noise", "--workers", "1",
                 "--no-progress", "--detector", "nova", "robust_window", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "| nova |" in text and "| robust_window |" in text
    assert "reward_low_FP_rate" in text and "artificialWithAnomaly" in text
    assert "n/a (" in text  # artificialNoAnomaly has no windows: its false alarms instead of a score
    assert out.read_text() == text


def test_nab_help_teaches_the_score(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nab", "--help"]) == 0
    text = capsys.readouterr().out
    assert "probation" in text and "Random Cut Forest 51.7" in text


@pytest.mark.parametrize(("argv", "needle"), [
    (["--only", "no-such-series"], "--only no-such-series"),
    (["--param", "record_points=abc"], "not KEY=NUMBER"),
    (["--param", "no_such=1"], "has no hyperparameter 'no_such'"),
    (["--param", "quiet_points=0"], "above 0"),
    (["--param", "quiet_points=1.5"], "a whole number"),
    (["--detector", "nova", "robust_window", "--param", "quiet_points=5"], "one detector"),
    (["--workers", "0"], "--workers 0"),
])
def test_nab_bad_arguments(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["nab", str(nab_corpus()), "--no-progress", *argv], capsys, needle)


def test_nab_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_exit_2(["nab", str(tmp_path)], capsys, "combined_windows.json")


@pytest.mark.parametrize(("csv_text", "windows", "needle"), [
    ("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,x\n", {"g/s.csv": []}, "line 3"),
    ("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n",
     {"g/s.csv": [["2015-01-01 00:00:00.000000", "2015-01-01 00:05:00.000000"]]}, "does not match a timestamp"),
    ("timestamp,value\n", {"g/s.csv": []}, "two or more"),
    ("timestamp,value\n2014-01-01 00:00:00,1\n", {"g/missing.csv": []}, "cannot be read"),
])
def test_nab_bad_corpus_files(tmp_path: Path, csv_text: str, windows: object, needle: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus(tmp_path, csv_text, windows)
    assert_one_line_exit_2(["nab", str(corpus), "--no-progress", "--workers", "1"], capsys, needle)


def test_nab_windows_file_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tiny_corpus(tmp_path, "timestamp,value\n", {})
    (corpus / "labels" / "combined_windows.json").write_text("{not json")
    assert_one_line_exit_2(["nab", str(corpus)], capsys, "not JSON")
