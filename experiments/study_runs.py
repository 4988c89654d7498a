"""The runs of a study, built from one parsed ``litexp fit`` config.

``litexp tune`` parses the base configs and overrides once (:class:`StudyRuns`). Each fold of a
trial, and the refit, is a copy of that parsed config with the trial's values, the fold and the
W&B names set on it (:func:`set_value`), built into model, datamodule and trainer by
``LitexpCLI.rebuild`` with its run directory given explicitly and the test split locked on the
datamodule instance. Nothing is parsed again per run, and no environment variable carries the run
directory. A trial on several devices runs each fold as a child ``litexp fit`` process group
instead (:mod:`experiments.study_ddp`), from the same arguments (:meth:`StudyRuns.fit_args`).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any, Optional

import yaml
from jsonargparse import Namespace

from experiments.cli import LitexpCLI, _user_error, summarize_parse_error
from experiments.search_space import cli_args
from litexp.errors import LitexpError

BUILDER_KEYS = ("class_path", "init_args", "dict_kwargs")


class StudyCLI(LitexpCLI):
    """Parses ``litexp fit`` arguments and builds the model and data classes (reads no data, builds no
    trainer, runs nothing); :meth:`LitexpCLI.rebuild` then builds each run from a copy of the config."""

    def instantiate_classes(self) -> None:
        if self.given_run_dir is not None:  # a run of the study: the whole fit, as litexp fit builds it
            super().instantiate_classes()
            return
        self.config_init = self.parser.instantiate_classes(self.config)
        self.model = self._get(self.config_init, "model")
        self.datamodule = self._get(self.config_init, "data")

    def _run_subcommand(self, subcommand: str) -> None:
        pass


def set_value(config: Namespace | dict, key: str, value: Any) -> None:
    """Set the ``litexp fit`` key ``key`` (``model.lr``, ``model.network_args.dropout``, ``data.fold``,
    ``trainer.max_epochs``) to ``value`` in a parsed ``fit`` config (or its dump), as ``--key=value`` would."""
    node: Any = config
    parts = key.split(".")
    for index, part in enumerate(parts):
        if isinstance(node, (Namespace, dict)) and "class_path" in node and part not in BUILDER_KEYS:
            if node.get("init_args") is None:
                node["init_args"] = Namespace() if isinstance(node, Namespace) else {}
            node = node["init_args"]  # model.lr is model.init_args.lr of the chosen class
        if index == len(parts) - 1:
            node[part] = value
            return
        child = node.get(part) if isinstance(node, (dict, Namespace)) else None
        if child is None:
            child = {} if isinstance(node, dict) else Namespace()
            node[part] = child
        node = child


class StudyRuns:
    """Every run of one study: ``litexp fit`` with ``configs`` and ``base_args``, parsed once."""

    def __init__(self, configs: list[str], base_args: list[str]) -> None:
        self.configs, self.base_args = list(configs), list(base_args)
        self.argv = ["fit", *[item for config in configs for item in ("--config", config)], *base_args]
        try:
            self.cli = StudyCLI(self.argv)
        except argparse.ArgumentError as error:
            raise LitexpError(summarize_parse_error(str(error), "fit")) from None
        except Exception as error:
            raise LitexpError(str(_user_error(error) or f"{type(error).__name__}: {error}")) from None
        self.base = self.cli.config.clone()
        self.model = self.cli.model  # built from the base config: the task's monitor and metrics
        # the parsed config as LightningCLI dumps it for the model's saved hyperparameters, once
        dump = self.cli.parser.dump(self.base, skip_link_targets=False, skip_none=False, format="yaml")
        self.base_dump = yaml.safe_load(dump)["fit"]

    def pin(self, values: dict[str, Any]) -> None:
        """Set ``values`` in every run from now on (the base config and its dump)."""
        for key, value in values.items():
            set_value(self.base["fit"], key, value)
            set_value(self.base_dump, key, value)
            self.argv.append(f"--{key}={value}")

    @property
    def fit_config(self) -> Namespace:
        """The parsed ``fit`` config every run starts from."""
        return self.base["fit"]

    def config_with(self, values: dict[str, Any]) -> Namespace:
        config = self.base.clone()
        for key, value in values.items():
            set_value(config["fit"], key, value)
        return config

    def check(self, values: dict[str, Any]) -> None:
        """Refuse, in one line, values a trial could not run: set on the parsed config, validated and built
        exactly as a trial builds them; when refused, the reason ``litexp fit --key=value`` gives."""
        try:
            config = self.config_with(values)
            self.cli.parser.validate(config)
            self.cli.parser.instantiate_classes(config)
            return
        except Exception as error:  # noqa: BLE001 - explained below, in the CLI's words where it has them
            refused = error
        try:
            self.cli.parser.instantiate_classes(self.cli.parser.parse_args([*self.argv, *cli_args(values)]))
        except argparse.ArgumentError as error:
            raise LitexpError(summarize_parse_error(str(error), "fit")) from None
        except Exception as error:
            refused = error
        user_error = _user_error(refused)
        message = str(user_error) if user_error else f"{type(refused).__name__}: {refused}"
        raise LitexpError(" ".join(message.split())) from None

    def build(self, values: dict[str, Any], run_dir: Path, refit: bool = False) -> LitexpCLI:
        """Model, datamodule and trainer of one run (``values`` set on the parsed config), into ``run_dir``.

        A fold's data refuses to read the test split, and its W&B run gets scalars and summary facts
        only (pictures and tables for every fold of every trial would cost more than the fold's
        training); the refit's gets them all, and evaluates the test split."""
        dump = copy.deepcopy(self.base_dump)
        for key, value in values.items():
            set_value(dump, key, value)
        self.cli.rebuild(self.config_with(values), run_dir, lock_test=not refit, media=refit, config_dump=dump)
        return self.cli

    def fit_args(self, values: dict[str, Any]) -> list[str]:
        """The ``litexp fit`` arguments of one run, for a run in its own processes."""
        return [*self.argv, *cli_args(values)]


def devices_per_trial(fit_config: Namespace) -> int:
    """How many processes train one trial: 1, or N with ``--trainer.devices=N --trainer.strategy=ddp``."""
    trainer = fit_config["trainer"]
    devices, strategy = trainer.get("devices"), str(trainer.get("strategy") or "auto")
    if (trainer.get("num_nodes") or 1) > 1:
        raise LitexpError("litexp tune trains a trial on one node; to use several hosts, start workers on each "
                          "with the same --storage (a PostgreSQL URL) and --study-name")
    if isinstance(devices, list):
        count: Optional[int] = len(devices)
    elif isinstance(devices, int) or (isinstance(devices, str) and devices.isdigit()):
        count = int(devices)
    elif devices in (None, "auto") and "ddp" not in strategy:
        return 1
    else:
        count = None
    if count == 1 and "ddp" not in strategy:
        return 1
    if count is None or count < 1 or "ddp" not in strategy or "spawn" in strategy:
        raise LitexpError(f"a trial on several devices needs --trainer.devices=N (a number) and "
                          f"--trainer.strategy=ddp, got devices={devices!r}, strategy={strategy!r}; or start one "
                          "worker per device with the same --storage and --study-name")
    return count
