"""Language models and word2vec end to end: fit on any text file, generate from the checkpoint."""

from __future__ import annotations

import pytest
import torch

from experiments.cli import CONFIG_DIR, main
from tests.experiments.conftest import read_summary
from tests.fake_data import english_like_text

GRU = str(CONFIG_DIR / "text/gru_timemachine.yaml")
SMALL = ["--data.batch_size=32", "--data.num_steps=16", "--model.network_args={hidden_size: 48}"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(english_like_text(700, seed=7), encoding="utf-8")
    return path


def test_gru_on_any_text_file_beats_nothing_and_generates_with_its_vocab(litexp, text_file, capsys):
    code, run_dir = litexp("fit", "--config", GRU, "--data.path", str(text_file), *SMALL,
                           "--trainer.max_epochs=4", "--data.sampling=sequential", "--test")
    assert code == 0
    summary = read_summary(run_dir)
    val_ppl = summary["fit"]["metrics"]["val/ppl"]
    assert summary["fit"]["monitor"] == "val/ppl" and summary["data"]["sampling"] == "sequential"
    assert summary["model"]["ngram_order"] == 3 and summary["model"]["ngram_val_ppl"] > 1
    assert val_ppl < 0.5 * summary["data"]["vocab_size"]  # far better than guessing among the tokens
    assert summary["test"]["metrics"]["test/ppl"] > 1
    checkpoint = torch.load(run_dir / "checkpoints/best.ckpt", weights_only=True)
    assert checkpoint["vocab"]["tokens"][:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert checkpoint["hyper_parameters"]["carry_state"] is True  # linked from sequential sampling

    text_file.unlink()  # generation needs only the checkpoint: the vocabulary travels inside it
    capsys.readouterr()
    args = ["generate", "--ckpt_path", str(run_dir / "checkpoints/best.ckpt"), "--prefix", "The time",
            "--num_tokens", "40"]
    assert main([*args, "--greedy"]) == 0
    greedy = capsys.readouterr().out.strip()
    assert greedy.startswith("the time") and len(greedy) == len("the time") + 40
    assert set(greedy) <= set(checkpoint["vocab"]["tokens"])
    assert main([*args, "--temperature", "0.8", "--top_k", "3", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip().startswith("the time")


def test_checkpoint_evaluates_with_litexp_test(litexp, text_file):
    assert litexp("fit", "--config", GRU, "--data.path", str(text_file), *SMALL, "--trainer.max_epochs=1")[0] == 0
    checkpoint = next(litexp.root.glob("*/*/checkpoints/best.ckpt"))
    code, _ = litexp("test", "--config", str(checkpoint.parent.parent / "config.yaml"), "--ckpt_path",
                     str(checkpoint), "--run.name", "test")
    assert code == 0
    test_run = next((litexp.root / "test").iterdir())
    assert read_summary(test_run)["test"]["metrics"]["test/ppl"] > 1


@pytest.mark.parametrize("args,expected", [
    (["--data.corpus=shakespear"], "unknown corpus 'shakespear'; valid corpora: timemachine"),
    (["--model.network_args={bidirectional: true}"], "cannot be bidirectional"),
    (["--data.batch_size=100000"], "fewer than one batch"),
    (["--model.network=lenet"], "unknown network 'lenet'; valid networks: gru_lm, lstm_lm, rnn_lm"),
])
def test_bad_text_options_are_one_line_errors(fake_data_dir, tmp_path, capsys, args, expected):
    code = main(["fit", "--config", GRU, "--data.batch_size=8", *args, "--run.root", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and expected in error[0], error
    assert not (tmp_path / "runs").exists()


def test_generate_rejects_a_missing_or_foreign_checkpoint(tmp_path, capsys):
    assert main(["generate", "--ckpt_path", str(tmp_path / "none.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    torch.save({"state_dict": {}}, tmp_path / "vision.ckpt")
    assert main(["generate", "--ckpt_path", str(tmp_path / "vision.ckpt")]) == 2
    assert "holds no vocabulary" in capsys.readouterr().err


def test_word2vec_fit_export_and_nearest(fake_data_dir, litexp, tmp_path, capsys):
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "text/word2vec_ptb.yaml"), "--trainer.max_epochs=1",
                           "--data.min_freq=2", "--data.batch_size=256", "--data.subsample_threshold=0.01",
                           "--model.network_args={embedding_dim: 16}")
    assert code == 0
    assert (run_dir / "embeddings.txt").read_text().splitlines()[0].endswith(" 16")
    capsys.readouterr()
    assert main(["word2vec", "nearest", "--embeddings", str(run_dir / "embeddings.txt"), "--word", "time",
                 "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 2 for line in lines)
    checkpoint = str(run_dir / "checkpoints/best.ckpt")
    assert main(["word2vec", "export", "--ckpt_path", checkpoint, "--out", str(tmp_path / "v.txt")]) == 0
    exported, written = ([line.split(" ")[0] for line in (path).read_text().splitlines()]
                         for path in (tmp_path / "v.txt", run_dir / "embeddings.txt"))
    assert exported == written  # same header, same words in the same order
    assert main(["word2vec", "nearest", "--ckpt_path", checkpoint, "--word", "nosuchword"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
