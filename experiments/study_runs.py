"""The runs of a study: ``litexp fit`` arguments built into model, data and trainer, never started here.

``litexp tune`` builds one run per fold and one refit with :func:`build_cli`, checks every search
key with :func:`make_checker` before any training, and keeps the test split locked while searching.
"""

from __future__ import annotations

import argparse
import contextlib
import os

from datamodules import DataModule
from experiments.cli import RUN_DIR_ENV, LitexpCLI, _user_error, summarize_parse_error
from litexp.errors import LitexpError


class BuildOnlyCLI(LitexpCLI):
    """``litexp fit`` arguments -> model, datamodule and trainer (seeded as fit seeds them), not run."""

    def _run_subcommand(self, subcommand: str) -> None:
        pass


def build_cli(configs: list[str], args: list[str]) -> LitexpCLI:
    """One ``litexp fit`` run, built but not started (model, datamodule, trainer)."""
    argv = ["fit", *[item for config in configs for item in ("--config", config)], *args]
    try:
        return BuildOnlyCLI(argv)
    except argparse.ArgumentError as error:
        raise LitexpError(summarize_parse_error(str(error), "fit")) from None
    finally:
        os.environ.pop(RUN_DIR_ENV, None)  # each fold gets its own run directory


class ParseOnlyCLI(BuildOnlyCLI):
    """Parses and builds the model and data classes, reads no data, builds no trainer."""

    def instantiate_classes(self) -> None:
        self.config_init = self.parser.instantiate_classes(self.config)
        self.model = self._get(self.config_init, "model")
        self.datamodule = self._get(self.config_init, "data")


def make_checker(configs: list[str], base_args: list[str]):
    """``check(args)``: parse and build with these extra args, one-line LitexpError when refused."""
    try:
        first = ParseOnlyCLI(["fit", *[i for c in configs for i in ("--config", c)], *base_args])
    except argparse.ArgumentError as error:
        raise LitexpError(summarize_parse_error(str(error), "fit")) from None
    except Exception as error:
        raise LitexpError(str(_user_error(error) or f"{type(error).__name__}: {error}")) from None

    def check(args: list[str]) -> None:
        argv = ["fit", *[i for c in configs for i in ("--config", c)], *base_args, *args]
        try:
            first.parser.instantiate_classes(first.parser.parse_args(argv))
        except argparse.ArgumentError as error:
            raise LitexpError(summarize_parse_error(str(error), "fit")) from None
        except Exception as error:
            user_error = _user_error(error)
            raise LitexpError(str(user_error or f"{type(error).__name__}: {error}")) from None

    return first, check


@contextlib.contextmanager
def test_split_locked():
    """While searching, ``setup("test"|"predict")`` of every DataModule raises."""
    DataModule.test_split_locked = True
    try:
        yield
    finally:
        DataModule.test_split_locked = False


def check_single_device(parsed) -> None:
    trainer = parsed["fit"]["trainer"]
    devices, strategy = trainer.get("devices"), str(trainer.get("strategy") or "auto")
    several = (isinstance(devices, int) and devices > 1) or (isinstance(devices, list) and len(devices) > 1) \
        or (isinstance(devices, str) and devices not in ("1", "auto")) or (trainer.get("num_nodes") or 1) > 1
    if several or "ddp" in strategy:
        raise LitexpError("litexp tune trains each trial on one device; to use several devices start several "
                          "workers with the same --storage and --study-name (one device each)")
