"""Two nodes x one process (torchrun, gloo, on loopback): the same result as two processes on one node.

Two ``torchrun --nnodes 2`` launches on this machine, ``--node-rank 0`` and ``--node-rank 1``, meet at
``127.0.0.1`` (static rendezvous) and each starts one ``litexp fit`` worker; Lightning takes ranks and
world size from torchelastic's environment. Compared with Lightning's own launcher starting two
processes on one node (``trainer/ddp_cpu.yaml``), every rank must get the same samples and the final
validation metrics must agree (1e-4 on the loss, one validation sample on the accuracy, as in
test_ddp.py). Both ranks are given the same ``--run.name``/``--run.version``; only global rank 0 may
create and write the run directory, so the runs root holds exactly one run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed

from experiments.cli import CONFIG_DIR
from tests.fake_data import write_idx_dataset

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is not available")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fit_arguments(tmp_path: Path, name: str) -> list[str]:
    probe = tmp_path / f"{name}-probe.yaml"
    probe.write_text(
        "trainer:\n  callbacks:\n    - class_path: tests.ddp_probe.RecordSamples\n"
        f"      init_args:\n        out_dir: {tmp_path / name}\n"
    )
    return ["fit", "--config", str(CONFIG_DIR / "mnist/mlp.yaml"), "--config", str(probe),
            "--trainer.max_epochs=3", "--data.val_fraction=0.25", "--model.lr=0.05", "--data.batch_size=16",
            "--run.root", str(tmp_path / "runs"), "--run.name", name, "--trainer.enable_progress_bar=false"]


def environment(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "LITEXP_DATA_DIR": str(tmp_path / "data"), "WANDB_MODE": "disabled",
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for name in [*env]:
        if name.startswith("SLURM_") or name in ("LITEXP_RUN_DIR", "RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE",
                                                 "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name)
    return env


def stop(process: subprocess.Popen) -> None:
    """Ends a launch and the workers it started (each launch leads its own process group)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def run_together(tmp_path: Path, name: str, launches: list[tuple[list[str], dict[str, str]]]) -> None:
    """Starts every (command, environment) at once, waits for all; a failure or the timeout stops them all."""
    processes = []
    for index, (command, env) in enumerate(launches):
        log = open(tmp_path / f"{name}-{index}.log", "w+")
        processes.append((subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True), log))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(process.poll() is None for process, _ in processes):
            if any(process.poll() not in (None, 0) for process, _ in processes) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for process, _ in processes:
            stop(process)
    outputs = []
    for _, log in processes:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    codes = [process.returncode for process, _ in processes]
    assert codes == [0] * len(processes), f"exit codes {codes}\n" + "\n".join(
        f"--- launch {index} ---\n{output[-3000:]}" for index, output in enumerate(outputs))


MULTI_NODE = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.num_nodes=2", "--trainer.strategy=ddp"]


def torchrun_two_nodes(tmp_path: Path, name: str, version: str) -> None:
    """``torchrun`` twice, node ranks 0 and 1, one worker each, the same --run.name/--run.version."""
    port = free_port()
    run_together(tmp_path, name, [
        ([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node_rank),
          "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
          "-m", "experiments", *fit_arguments(tmp_path, name), "--run.version", version, *MULTI_NODE],
         environment(tmp_path))
        for node_rank in (0, 1)])


def srun_two_nodes(tmp_path: Path, name: str) -> None:
    """Two tasks with the variables ``srun --nodes=2 --ntasks-per-node=1`` gives them (set by hand here), and
    no --run.version: rank 1 must neither claim a timestamped directory of its own nor write into one."""
    port = free_port()
    run_together(tmp_path, name, [
        ([sys.executable, "-m", "experiments", *fit_arguments(tmp_path, name), *MULTI_NODE],
         {**environment(tmp_path), "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(rank),
          "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank), "SLURM_JOB_NAME": "litexp", "SLURM_JOB_ID": "4242",
          "SLURM_NODELIST": "127.0.0.1", "MASTER_PORT": str(port)})
        for rank in (0, 1)])


def only_run(root: Path) -> Path:
    (run_dir,) = [path for path in root.iterdir()]
    return run_dir


def test_two_nodes_match_two_processes_on_one_node(tmp_path):
    write_idx_dataset(tmp_path / "data", "MNIST", num_train=512, num_test=64)
    one_node = subprocess.run([sys.executable, "-m", "experiments", *fit_arguments(tmp_path, "one-node"),
                               "--config", str(CONFIG_DIR / "trainer/ddp_cpu.yaml")],
                              cwd=tmp_path, env=environment(tmp_path), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    assert one_node.returncode == 0, one_node.stderr[-3000:]
    torchrun_two_nodes(tmp_path, "torchrun", "v1")
    srun_two_nodes(tmp_path, "srun")

    # only global rank 0 created and wrote each run: one run directory per run, one summary in each
    runs = tmp_path / "runs"
    assert sorted(path.parent.name for path in runs.glob("*/*")) == ["one-node", "srun", "torchrun"]
    assert only_run(runs / "torchrun").name == "v1"
    assert sorted(path.parent.parent.name for path in runs.rglob("summary.json")) == ["one-node", "srun", "torchrun"]
    single = json.loads((only_run(runs / "one-node") / "summary.json").read_text())
    assert single["device"]["world_size"] == 2 and single["device"]["num_nodes"] == 1
    print(f"\none node, 2 processes: {single['fit']['metrics']}")
    for name in ("torchrun", "srun"):
        run_dir = only_run(runs / name)
        nodes = json.loads((run_dir / "summary.json").read_text())
        assert nodes["status"] == "completed" and (run_dir / "checkpoints/best.ckpt").is_file()
        assert (nodes["device"]["world_size"], nodes["device"]["num_nodes"], nodes["device"]["devices"]) == (2, 2, 1)
        # global rank r on node r gets exactly the samples of local rank r on one node
        for rank in (0, 1):
            on_nodes = json.loads((tmp_path / name / f"rank{rank}-of-2.json").read_text())
            assert on_nodes == json.loads((tmp_path / "one-node" / f"rank{rank}-of-2.json").read_text())
        single_metrics, node_metrics = single["fit"]["metrics"], nodes["fit"]["metrics"]
        print(f"2 nodes x 1 process ({name}): {node_metrics}")
        assert node_metrics["val/loss"] == pytest.approx(single_metrics["val/loss"], abs=1e-4)
        assert node_metrics["val/acc"] == pytest.approx(single_metrics["val/acc"], abs=1 / 128 + 1e-6)
    assert single["fit"]["metrics"]["val/acc"] > 0.5  # it learned something, so the comparison means something


def test_only_global_rank_zero_claims_the_run_directory(tmp_path, monkeypatch):
    from experiments.cli import is_main_process
    from experiments.run import RUN_DIR_ENV, RunOptions, new_run_dir
    from litexp.errors import LitexpError

    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert is_main_process()
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert not is_main_process()  # srun's second task
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # Lightning does not treat this as a SLURM launch
    assert is_main_process()
    monkeypatch.setenv("RANK", "1")  # torchrun's variables come first, as in Lightning
    assert not is_main_process()

    taken = tmp_path / "runs" / "mlp" / "v1"
    taken.mkdir(parents=True)
    (taken / "summary.json").write_text("{}")
    with pytest.raises(LitexpError, match="exists"):  # every rank that sees the taken version refuses it
        new_run_dir(RunOptions(root=str(tmp_path / "runs"), name="mlp", version="v1"), "x", claim=False)
    again = RunOptions(root=str(tmp_path / "runs"), name="mlp", version="v1", overwrite=True)
    assert new_run_dir(again, "x", claim=False) == taken and (taken / "summary.json").exists()  # rank 0 replaces it
    stamped = new_run_dir(RunOptions(root=str(tmp_path / "runs"), name="other"), "x", claim=False)
    assert stamped.parent == tmp_path / "runs" / "other" and not stamped.parent.exists()
