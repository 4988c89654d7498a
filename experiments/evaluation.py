"""Evaluations that cannot be wrong silently: ``validate``, ``test`` and ``predict`` need a checkpoint that
fits the config, and write into the run they evaluate.

``--ckpt_path`` takes a checkpoint file or a run directory (its ``checkpoints/best.ckpt``, and its
``config.yaml`` when no ``--config`` is given). The checkpoint is read with ``weights_only=True``
before anything is built, and its task class, network and data-linked sizes must equal the
config's: testing a LeNet checkpoint under an MLP config is refused, not run.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch

from litexp.errors import LitexpError

EVAL_COMMANDS = ("validate", "test", "predict")
#: hyperparameters a checkpoint and the config must agree on (beside the task class); sizes linked from
#: the data are not in the config yet, and a vocabulary that differs is refused by the task itself
MUST_MATCH = ("network", "network_args")


def option_value(argv: list[str], name: str) -> tuple[Optional[int], Optional[str]]:
    """(index in argv, value) of ``--name value`` or ``--name=value``; (None, None) when absent."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return index, argv[index + 1]
        if arg.startswith(name + "="):
            return index, arg.split("=", 1)[1]
    return None, None


def resolve_run_directory(argv: list[str]) -> list[str]:
    """``--ckpt_path <run dir>`` -> ``--ckpt_path <run dir>/checkpoints/best.ckpt`` (+ its config.yaml)."""
    if not argv or argv[0] not in EVAL_COMMANDS:
        return argv
    index, value = option_value(argv, "--ckpt_path")
    if value is None or not Path(value).is_dir():
        return argv
    run_dir = Path(value)
    checkpoint, config = run_dir / "checkpoints" / "best.ckpt", run_dir / "config.yaml"
    if not checkpoint.exists():
        raise LitexpError(f"{run_dir} is a directory without checkpoints/best.ckpt; give a run directory of "
                          f"litexp fit or a checkpoint file as --ckpt_path")
    argv = [*argv[:index], f"--ckpt_path={checkpoint}", *argv[index + (1 if "=" in argv[index] else 2):]]
    has_config = any(arg in ("-c", "--config") or arg.startswith("--config=") for arg in argv)
    return argv if has_config else [argv[0], "--config", str(config), *argv[1:]]


def read_checkpoint(path: Optional[str], command: str) -> dict[str, Any]:
    """The checkpoint's contents (tensors and plain values only), or one line saying what is wrong."""
    if not path:
        raise LitexpError(f"litexp {command} needs a trained model: --ckpt_path <checkpoint file> or "
                          f"--ckpt_path <run directory> (its checkpoints/best.ckpt and config.yaml)")
    if not Path(path).is_file():
        raise LitexpError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # every checkpoint torch.save writes is a zip archive
        raise LitexpError(f"cannot read checkpoint {path}: not a PyTorch checkpoint file; give a checkpoint "
                          f"written by litexp fit")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line or "Unsupported" in line]
        raise LitexpError(f"checkpoint {path} was refused: it holds objects that loading would have to run code "
                          f"for ({(found[0] if found else 'not plain tensors')[:120]}); load only checkpoints "
                          f"you trust, written by litexp fit") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise LitexpError(f"cannot read checkpoint {path}: {str(error).splitlines()[0][:160]}; give a checkpoint "
                          f"written by litexp fit") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise LitexpError(f"{path} is not a Lightning checkpoint (no state_dict); give one written by litexp fit")
    return checkpoint


def check_checkpoint_fits(checkpoint: dict[str, Any], path: str, class_path: str, arguments: dict[str, Any]) -> None:
    """Refuse a checkpoint whose task class or network differs from the config's model.

    Compared before LightningCLI merges the checkpoint's hyperparameters into the config, which would
    otherwise silently evaluate the checkpoint's model under a config that names another one.
    """
    saved = checkpoint.get("hyper_parameters") or {}
    saved_class = str(saved.get("_class_path", "")).rsplit(".", 1)[-1]
    config_class = str(class_path).rsplit(".", 1)[-1]
    if saved_class and saved_class != config_class:
        raise LitexpError(f"checkpoint {path} holds a {saved_class}, the config builds a {config_class}; "
                          f"evaluate it with its run's config.yaml (or --ckpt_path <run directory>)")
    differ = [f"{name} {saved[name]!r} != {arguments[name]!r}" for name in MUST_MATCH
              if name in saved and name in arguments and _plain(saved[name]) != _plain(arguments[name])]
    if differ:
        raise LitexpError(f"checkpoint {path} does not fit the config ({'; '.join(differ)} in the config); evaluate "
                          f"it with its run's config.yaml (or --ckpt_path <run directory>)")


def _plain(value: Any) -> Any:
    """Tuples as lists, and no network_args the same as empty ones."""
    if value is None or value == {}:
        return None
    return list(value) if isinstance(value, tuple) else value


def evaluation_dir(checkpoint_path: str, command: str, stamp: str) -> Optional[Path]:
    """``<run>/eval/<command>-<stamp>/`` when the checkpoint lies in a run directory, else None."""
    checkpoint = Path(checkpoint_path).resolve()
    run = checkpoint.parent.parent
    if checkpoint.parent.name != "checkpoints" or not (run / "config.yaml").exists():
        return None
    folder, suffix = run / "eval" / f"{command}-{stamp}", 1
    while folder.exists():
        folder, suffix = run / "eval" / f"{command}-{stamp}-{suffix}", suffix + 1
    return folder
