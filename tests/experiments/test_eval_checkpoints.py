"""validate / test / predict: a checkpoint is required, must fit the config, and results land in its run."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from experiments.cli import CONFIG_DIR, main

LINEAR = str(CONFIG_DIR / "synthetic/linear_regression.yaml")
QUIET = ("--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--wandb.mode=disabled")


@pytest.fixture
def linear_run(tmp_path):
    assert main(["fit", "--config", LINEAR, "--trainer.max_epochs=1", *QUIET, "--run.root", str(tmp_path / "runs"),
                 "--run.name=lin", "--run.version=v1"]) == 0
    return tmp_path / "runs" / "lin" / "v1"


def fails(capsys, *args) -> str:
    assert main([*args, *QUIET]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("litexp: error: ") and "Traceback" not in error[0], error
    return error[0]


def test_a_run_directory_is_evaluated_alone_and_results_go_into_it(linear_run, capsys):
    for command in ("test", "validate", "predict"):
        assert main([command, "--ckpt_path", str(linear_run), *QUIET]) == 0, command
        assert f"{command} results written to {linear_run / 'eval'}" in capsys.readouterr().err
    (test_dir,) = (linear_run / "eval").glob("test-*")
    summary = json.loads((test_dir / "summary.json").read_text())
    assert summary["test"]["metrics"]["test/loss"] >= 0
    assert len(list((linear_run / "eval").glob("predict-*/predictions.csv"))) == 1
    assert sorted(p.name for p in linear_run.parent.iterdir()) == ["v1"]  # no run-like folder beside it


def test_evaluation_needs_a_checkpoint(linear_run, capsys):
    line = fails(capsys, "validate", "--config", str(linear_run / "config.yaml"))
    assert "needs a trained model: --ckpt_path" in line
    assert not (linear_run / "eval").exists()


def test_a_checkpoint_of_another_task_or_network_is_refused(linear_run, fake_data_dir, tmp_path, capsys):
    checkpoint = str(linear_run / "checkpoints" / "best.ckpt")
    line = fails(capsys, "test", "--config", str(CONFIG_DIR / "fashion_mnist/softmax.yaml"), "--ckpt_path", checkpoint,
                 "--run.root", str(tmp_path / "r"))
    assert "holds a RegressionTask, the config builds a ClassificationTask" in line
    assert main(["fit", "--config", str(CONFIG_DIR / "fashion_mnist/softmax.yaml"), "--trainer.max_epochs=1", *QUIET,
                 "--run.root", str(tmp_path / "runs"), "--run.name=soft"]) == 0
    softmax = next((tmp_path / "runs" / "soft").glob("*/checkpoints/best.ckpt"))
    capsys.readouterr()  # the fit's own lines
    line = fails(capsys, "test", "--config", str(CONFIG_DIR / "fashion_mnist/mlp.yaml"), "--ckpt_path", str(softmax),
                 "--run.root", str(tmp_path / "r"))
    assert "does not fit the config" in line and "network 'softmax_regression' != 'mlp'" in line
    assert not (tmp_path / "r").exists()


def test_unreadable_and_unsafe_checkpoints_are_one_line(linear_run, tmp_path, capsys):
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(256)) * 8)
    assert "cannot read checkpoint" in fails(capsys, "test", "--config", str(linear_run / "config.yaml"),
                                             "--ckpt_path", str(noise))

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    unsafe = tmp_path / "unsafe.ckpt"
    with open(unsafe, "wb") as handle:
        pickle.dump({"state_dict": {}, "x": Payload()}, handle)
    torch.save({"state_dict": {}, "payload": Payload()}, tmp_path / "unsafe2.ckpt")
    for path in (unsafe, tmp_path / "unsafe2.ckpt"):
        line = fails(capsys, "test", "--config", str(linear_run / "config.yaml"), "--ckpt_path", str(path))
        assert "refused" in line or "cannot read" in line, line
    assert "code ran" not in capsys.readouterr().out
    assert "does not exist" in fails(capsys, "test", "--config", str(linear_run / "config.yaml"),
                                     "--ckpt_path", str(tmp_path / "missing.ckpt"))
