"""Every user mistake: one line on stderr, exit code 2, no run directory written."""

from __future__ import annotations

import pytest

from experiments.cli import CONFIG_DIR, main

MLP = str(CONFIG_DIR / "fashion_mnist/mlp.yaml")


def run_failing(capsys, tmp_path, *args):
    code = main([*args, "--run.root", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert not (tmp_path / "runs").exists(), "nothing may be written for a failed start"
    assert len(error) == 1 and error[0].startswith("litexp: error: "), error
    return error[0]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--model", "Nope"], "unknown model 'Nope'; valid model: ClassificationTask, .*RegressionTask"),
        (["--data", "Nope"], "unknown data 'Nope'; valid data: .*FashionMNIST"),
        (["--model.network", "lenett"], "unknown network 'lenett'; valid networks: .*lenet"),
        (["--model.network_args", "{hidden: 3}"], "network 'mlp' has no argument 'hidden'"),
        (["--model.foo", "1"], "no option 'foo'"),
        (["--trainer.max_epoch", "3"], "max_epoch"),
        (["--model.lr=-1"], "lr.*-1"),
        (["--model.lr=0"], "lr"),
        (["--data.batch_size=0"], "batch_size"),
        (["--data.batch_size=-5"], "batch_size"),
        (["--data.num_folds=3", "--data.fold=3"], "fold must lie in 0..2"),
        (["--data.num_folds=31"], "num_folds=31 is larger than the smallest class"),
        (["--data.val_fraction=1.5"], "val_fraction must lie in"),
    ],
)
def test_bad_options(fake_data_dir, capsys, tmp_path, args, expected):
    import re

    line = run_failing(capsys, tmp_path, "fit", "--config", MLP, *args)
    assert re.search(expected, line), line


def test_unknown_key_in_a_config_file(fake_data_dir, capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  init_args:\n    learning_rate: 0.1\n")
    line = run_failing(capsys, tmp_path, "fit", "--config", MLP, "--config", str(config))
    assert "learning_rate" in line


def test_missing_data_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LITEXP_DATA_DIR", str(tmp_path / "nothing-here"))
    line = run_failing(capsys, tmp_path, "fit", "--config", str(CONFIG_DIR / "mnist/mlp.yaml"),
                       "--data.download=false")
    assert "not found in" in line and "nothing-here" in line


def test_corrupt_dataset_file(fake_data_dir, capsys, tmp_path):
    batch = fake_data_dir / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:100])
    line = run_failing(capsys, tmp_path, "fit", "--config", str(CONFIG_DIR / "cifar10/mlp.yaml"))
    assert "checksum mismatch" in line and "data_batch_1" in line


def test_wrong_task_for_the_data(fake_data_dir, capsys, tmp_path):
    line = run_failing(capsys, tmp_path, "fit", "--config", MLP, "--model", "RegressionTask")
    assert "RegressionTask" in line or "network" in line


def test_unknown_command(capsys):
    assert main(["fitt"]) == 2
    assert "unknown command 'fitt'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--trainer.max_epochs=-5"], "invalid Trainer setting: `max_epochs` must be a non-negative integer"),
        (["--trainer.accelerator=gpu"], "invalid Trainer setting"),
        (["--trainer.devices=0"], "invalid Trainer setting"),
        (["--seed_everything=abc"], "seed_everything"),
        (["--model.lr=inf"], "lr must be a finite number > 0"),
        (["--model.lr=nan"], "lr"),
        (["--data.num_train=0"], "num_train"),
        (["--run.name=../../x"], "plain folder name"),
        (["--run.version=a/b"], "plain folder name"),
        (["--model.optimizer=adamm"], "optimizer"),
        (["--model.scheduler=linear"], "scheduler"),
        (["--data.split_seed=x"], "split_seed"),
    ],
)
def test_bad_settings_of_a_quick_experiment(capsys, tmp_path, args, expected):
    import re

    line = run_failing(capsys, tmp_path, "fit", "--config", str(CONFIG_DIR / "synthetic/linear_regression.yaml"),
                       "--wandb.mode=disabled", *args)
    assert re.search(expected, line), line


def test_yaml_errors_name_the_file_the_line_and_the_problem(capsys, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  init_args:\n lr: [1\n")
    line = run_failing(capsys, tmp_path, "fit", "--config", str(config))
    assert f"config file {config}: line 3, column 2: " in line and "expected" in line
    assert "does not exist" in run_failing(capsys, tmp_path, "fit", "--config", str(tmp_path / "missing.yaml"))
    assert "is a directory" in run_failing(capsys, tmp_path, "fit", f"--config={tmp_path}")


def test_an_unwritable_run_root_is_one_line(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["fit", "--config", str(CONFIG_DIR / "synthetic/linear_regression.yaml"), "--wandb.mode=disabled",
                 "--run.root", str(blocker / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "cannot create the run directory" in error[0], error


def test_bad_input_through_a_real_process(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "experiments", "test", "--config",
                             str(CONFIG_DIR / "synthetic/linear_regression.yaml")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("litexp: error: litexp test needs a trained model")
    assert not (tmp_path / "runs").exists()
