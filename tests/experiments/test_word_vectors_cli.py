"""Word vectors end to end: GloVe fit and its embeddings file, queries on any vector file, and a language
model that starts from (and keeps) pretrained vectors."""

from __future__ import annotations

import torch

from experiments.cli import CONFIG_DIR, main
from lit_models.pretrained_vectors import read_vectors
from tests.experiments.conftest import read_summary
from tests.fake_data import english_like_text


def test_glove_fit_writes_vectors_that_nearest_and_analogy_read(fake_data_dir, litexp, capsys):
    code, run_dir = litexp("fit", "--config", str(CONFIG_DIR / "text/glove_ptb.yaml"), "--trainer.max_epochs=1",
                           "--data.min_freq=2", "--data.batch_size=256", "--model.network_args={embedding_dim: 8}")
    assert code == 0
    words, vectors = read_vectors(run_dir / "embeddings.txt")
    assert vectors.shape[1] == 8 and words[0] == "<unk>" and "time" in words
    capsys.readouterr()
    checkpoint = str(run_dir / "checkpoints/best.ckpt")
    for source in (["--embeddings", str(run_dir / "embeddings.txt")], ["--ckpt_path", checkpoint]):
        assert main(["word2vec", "nearest", *source, "--word", "time", "--k", "3"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["word2vec", "analogy", "--ckpt_path", checkpoint, "--words", "the", "time", "a", "--k", "2"]) == 0
    answers = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert len(answers) == 2 and not {"the", "time", "a"} & set(answers)


def test_queries_on_a_headerless_file_and_bad_files_are_one_line(tmp_path, capsys):
    path = tmp_path / "glove.txt"
    path.write_text("man 1 0 0\nking 1 1 0\nwoman 0 0 1\nqueen 0 1 1\napple -1 -1 0\n", encoding="utf-8")
    assert main(["word2vec", "analogy", "--embeddings", str(path), "--words", "man", "king", "woman",
                 "--k", "1"]) == 0
    assert capsys.readouterr().out.startswith("queen\t")
    path.write_text("man 1 0 0\nking 1 1\n", encoding="utf-8")
    assert main(["word2vec", "nearest", "--embeddings", str(path), "--word", "man"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "line 2" in error and "ragged" in error


def test_a_language_model_starts_from_frozen_pretrained_vectors(litexp, tmp_path, capsys):
    text = tmp_path / "book.txt"
    text.write_text(english_like_text(200, seed=3), encoding="utf-8")
    words = sorted({word for word in english_like_text(200, seed=3).lower().split() if word.isalpha()})[:20]
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(f"{len(words)} 4\n" + "".join(f"{word} {i} 0.5 -1 2\n" for i, word in enumerate(words)),
                       encoding="utf-8")
    options = ["fit", "--config", str(CONFIG_DIR / "text/lstm_word.yaml"), "--data.path", str(text),
               "--data.batch_size=8", "--data.num_steps=8", "--trainer.max_epochs=1", "--trainer.max_time=null",
               "--model.network_args={hidden_size: 8, embedding_dim: 4}"]
    code, run_dir = litexp(*options, "--model.pretrained_embeddings", str(vectors), "--model.freeze_embeddings=true")
    assert code == 0
    model = read_summary(run_dir)["model"]
    assert model["embedding_words_found"] == len(words) and 0 < model["embedding_coverage"] <= 1
    state = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    tokens = state["vocab"]["tokens"]
    weight = state["state_dict"]["network.encoder.input.embedding.weight"]
    assert torch.equal(weight[tokens.index(words[3])], torch.tensor([3.0, 0.5, -1, 2]))  # loaded and kept frozen
    capsys.readouterr()
    code, _ = litexp(*options, "--model.pretrained_embeddings", str(vectors), "--model.network_args.embedding_dim=5")
    assert code != 0
    assert "dimension 4 but" in capsys.readouterr().err
