"""litexp lm-report: texts prepared from their folders, rows chosen by glob, baselines, the table."""

from __future__ import annotations

import json
import re

import pytest

from experiments import lm_report
from experiments.cli import main
from litexp.errors import LitexpError
from tests.fake_data import english_like_text


@pytest.fixture
def tiny_text(tmp_path, monkeypatch):
    """A report text made of two 'fortune' files whose entries are separated by '%' lines."""
    folder = tmp_path / "fortunes"
    folder.mkdir()
    sentences = english_like_text(1400, seed=1).split(". ")
    half = len(sentences) // 2
    (folder / "a").write_text("\n%\n".join(sentences[:half]) + "\n", encoding="utf-8")
    (folder / "b").write_text("%\n".join(sentences[half:]) + "\n", encoding="utf-8")
    text = lm_report.ReportText("tiny", str(folder), ("a", "b"), None, "a test text")
    monkeypatch.setattr(lm_report, "TEXTS", {"tiny": text})
    return text


def test_prepare_text_joins_the_files_and_drops_fortune_separators(tiny_text, tmp_path):
    path = lm_report.prepare_text(tiny_text, tmp_path / "out", install=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "%" not in lines and len(lines) > 100
    missing = lm_report.ReportText("gone", str(tmp_path / "nowhere"), ("x",), "fortunes", "")
    with pytest.raises(LitexpError, match="missing; apt-get install fortunes"):
        lm_report.prepare_text(missing, tmp_path / "out", install=False)


def test_rows_cover_four_cells_two_settings_two_levels_and_are_chosen_by_glob():
    assert len(lm_report.ROWS) == 16 and len({row.name for row in lm_report.ROWS}) == 16
    assert [row.name for row in lm_report.chosen_rows("char-*-book")] == [
        "char-rnn-book", "char-gru-book", "char-lstm-book", "char-deep_gru-book"]
    shipped = {row.name: row for row in lm_report.chosen_rows("char-gru-cpu,word-lstm-cpu")}
    assert shipped["char-gru-cpu"].overrides == () and shipped["word-lstm-cpu"].config == "text/lstm_word.yaml"
    with pytest.raises(LitexpError, match="no report row matches 'char-transformer'"):
        lm_report.chosen_rows("char-transformer")
    with pytest.raises(LitexpError, match="unknown text nope"):
        lm_report.chosen_texts("nope")


def test_one_row_end_to_end_with_its_baselines(tiny_text, tmp_path, capsys):
    report_dir = tmp_path / "reports"
    assert main(["lm-report", "--rows", "char-rnn-book", "--texts", "tiny", "--epochs", "1",
                 "--report-dir", str(report_dir)]) == 0
    results = json.loads((report_dir / "lm.json").read_text())
    row = results["rows"]["tiny"]["char-rnn-book"]
    assert row["epochs"] == 1 and row["val_ppl"] > 1 and row["test_ppl"] > 1 and row["tokens_per_s"] > 0
    (baseline,) = results["baselines"].values()
    assert baseline["vocab_size"] == row["vocab_size"]  # the same tokens and vocabulary as the model
    assert baseline["1gram"]["val"] > baseline["2gram"]["val"] > baseline["3gram"]["val"] > 1
    table = (report_dir / "lm.md").read_text()
    assert re.search(r"\| char \| rnn \| book \| `text/rnn_timemachine.yaml` \| [\d,]+ \| 1 \|", table)
    assert ("| beats |" in table) or ("| loses |" in table)
    assert table.count("not measured") == 15
    (report_dir / "lm.md").unlink()
    assert main(["lm-report", "--render-only", "--report-dir", str(report_dir)]) == 0
    assert (report_dir / "lm.md").read_text() == table
