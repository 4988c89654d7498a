"""Translation end to end: the three models learn the toy language through ``litexp fit``, then
``litexp translate`` and ``litexp predict`` use the checkpoints."""

from __future__ import annotations

import csv
import difflib

import pytest

from experiments.bench_translation import evaluate_run
from experiments.cli import CONFIG_DIR, main
from tests.experiments.conftest import read_summary

MODELS = ("seq2seq", "attention", "transformer")


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> dict:
    """Each model trained with its toy config (corpus: toy, generated) and evaluated on the test split."""
    root = tmp_path_factory.mktemp("toy-runs")
    runs = {}
    for model in MODELS:
        code = main(["fit", "--config", str(CONFIG_DIR / "translation" / f"toy_{model}.yaml"), "--test",
                     "--run.root", str(root), "--run.name", model, "--trainer.enable_progress_bar=false",
                     "--trainer.enable_model_summary=false"])
        assert code == 0, model
        runs[model] = next((root / model).iterdir())
    return runs


@pytest.mark.parametrize("model", MODELS)
def test_every_model_reaches_bleu_09_on_the_held_out_test_split(toy_runs, model):
    summary = read_summary(toy_runs[model])
    assert summary["data"]["test_pairs"] == 1000 and summary["data"]["truncated"] == 0
    assert summary["fit"]["monitor"] == "val/bleu"
    assert summary["test"]["metrics"]["test/bleu"] >= 0.9, summary["test"]


def test_bleu_by_length_recomputes_the_runs_test_bleu_from_its_checkpoint(toy_runs):
    # which model wins on long sentences is a measured comparison: `python -m experiments.bench_translation`
    # prints it; here only what holds on any processor: the buckets and the recomputed corpus BLEU
    by_length = {model: evaluate_run(run)["by_length"] for model, run in toy_runs.items()}
    assert by_length["seq2seq"]["> 20"]["sentences"] >= 20
    for model, run in toy_runs.items():
        assert by_length[model]["all"]["bleu"] == pytest.approx(read_summary(run)["test"]["metrics"]["test/bleu"],
                                                                 abs=1e-3)


def _best(run) -> str:
    return str(run / "checkpoints" / "best.ckpt")


def test_translate_command_with_beam_search_and_attention_heatmaps(toy_runs, tmp_path, capsys):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("The big dog sees a cat often.\n\nno king helps every child today .\n", encoding="utf-8")
    code = main(["translate", "--ckpt_path", _best(toy_runs["attention"]), "--sentence", "the dog sees a cat .",
                 "--file", str(sentences), "--beam_size", "3", "--attention_dir", str(tmp_path / "plots")])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # the grammar's translations; a trained model may miss a word on another processor, never most of them
    expected = ["hundo lo kazo na ka vidas .", "hundo grod lo kazo na ka ofta vidas .",
                "regis mu lenu sei ka hodia helpas ."]
    assert [line.split(" => ")[0] for line in lines] == [
        "the dog sees a cat .", "the big dog sees a cat often .", "no king helps every child today ."]
    for line, reference in zip(lines, expected, strict=True):
        assert close_to(line.split(" => ")[1], reference), line
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [f"attention_{i}.png" for i in range(3)]
    assert (tmp_path / "plots" / "attention_0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_transformer_translates_with_greedy_and_beam_search(toy_runs, capsys):
    sentence = "every happy farmer follows the horse and a teacher knows no bird slowly ."
    reference = "farmu yari sei hesto lo ka sekvas kaj dakto na piri mu ka lante konas ."
    for beam in ("1", "4"):
        assert main(["translate", "--ckpt_path", _best(toy_runs["transformer"]), "--sentence", sentence,
                     "--beam_size", beam]) == 0
        assert close_to(capsys.readouterr().out.split(" => ")[1].strip(), reference), beam


def close_to(translation: str, reference: str) -> bool:
    """Most of the reference's words, in order: what a model at test BLEU >= 0.9 gives on any processor."""
    matcher = difflib.SequenceMatcher(a=translation.split(), b=reference.split())
    return matcher.ratio() >= 0.6


def test_translate_refuses_what_it_cannot_do(toy_runs, tmp_path, capsys):
    seq2seq = _best(toy_runs["seq2seq"])
    cases = [
        (["--ckpt_path", seq2seq, "--sentence", "a dog .", "--attention_dir", str(tmp_path)], "no attention weights"),
        (["--ckpt_path", seq2seq], "nothing to translate"),
        (["--ckpt_path", str(tmp_path / "missing.ckpt"), "--sentence", "a dog ."], "does not exist"),
        (["--ckpt_path", seq2seq, "--sentence", "a dog .", "--beam_size", "0"], "--beam_size must be >= 1"),
        (["--ckpt_path", seq2seq, "--sentence", "   "], "no tokens"),
    ]
    for args, message in cases:
        assert main(["translate", *args]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error
    assert not list(tmp_path.glob("*.png"))


def test_predict_writes_source_reference_and_translation(toy_runs, tmp_path):
    run = toy_runs["attention"]
    code = main(["predict", "--config", str(run / "config.yaml"), "--ckpt_path", _best(run),
                 "--run.root", str(tmp_path), "--run.name", "predict", "--trainer.enable_progress_bar=false"])
    assert code == 0
    with open(next((tmp_path / "predict").iterdir()) / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1000 and set(rows[0]) == {"source", "reference", "translation"}
    exact = sum(row["reference"] == row["translation"] for row in rows)
    assert exact / len(rows) > 0.9
