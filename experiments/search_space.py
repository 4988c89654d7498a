"""Search spaces for ``litexp tune``: a YAML file that maps CLI keys to Optuna distributions.

Every key is a key of ``litexp fit`` (``model.lr``, ``data.batch_size``,
``model.network_args.dropout``); a trial's values become ``--key=value`` overrides. A key whose
value is a mapping with a ``type`` is searched, any other key is a fixed override for every run
of the study (the study's epoch budget, for example)::

    trainer.max_epochs: 3                                        # fixed
    model.lr: {type: float, low: 1.0e-3, high: 1.0, log: true}   # searched
    model.optimizer: {type: categorical, choices: [sgd, adam]}
    data.batch_size: {type: int, low: 64, high: 256, step: 64}

Bad files and bad ranges are caught here, before any training; whether the CLI accepts each key
and value is checked by :func:`check_with_cli`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from litexp.errors import LitexpError

FIELDS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}, "categorical": {"choices"}}
# keys litexp tune sets itself for every run (the folds, the run directory, W&B names)
SET_BY_TUNE = ("data.num_folds", "data.fold", "data.val_fraction", "run.", "wandb.")
# keys that may be fixed but not searched: pruning steps are fold * max_epochs + epoch
NOT_SEARCHABLE = ("trainer.max_epochs",)


@dataclass
class SearchSpace:
    params: dict[str, BaseDistribution]  # CLI key -> distribution
    fixed: dict[str, Any]  # CLI key -> value applied to every run


def load_search_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise LitexpError(f"search space file {str(path)!r} not found; pass --search <file.yaml>")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise LitexpError(f"search space {path}: not valid YAML ({str(error).splitlines()[0]})") from error
    if not isinstance(raw, dict) or not raw:
        raise LitexpError(f"search space {path}: expected a mapping of CLI keys (model.lr: {{type: float, ...}})")
    params, fixed = {}, {}
    for key, spec in raw.items():
        key = str(key)
        if key == "test" or key.startswith(SET_BY_TUNE):
            raise LitexpError(f"search space {path}: {key} is set by litexp tune; remove it from the file")
        if isinstance(spec, dict) and "type" in spec:
            if key in NOT_SEARCHABLE:
                raise LitexpError(f"search space {path}: {key} cannot be searched; fix it (e.g. {key}: 3)")
            params[key] = parse_distribution(f"{path.name}: {key}", spec)
        else:
            fixed[key] = spec
    if not params:
        raise LitexpError(f"search space {path}: no searched key; give at least one (key: {{type: float, ...}})")
    return SearchSpace(params, fixed)


def parse_distribution(where: str, spec: dict) -> BaseDistribution:
    kind = spec.get("type")
    if kind not in FIELDS:
        raise LitexpError(f"{where}: type must be one of {', '.join(FIELDS)}, got {kind!r}")
    unknown = set(spec) - FIELDS[kind] - {"type"}
    if unknown:
        raise LitexpError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} for type {kind}; "
                          f"allowed: {', '.join(sorted(FIELDS[kind]))}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise LitexpError(f"{where}: choices must be a non-empty list")
        if any(not isinstance(choice, (str, int, float, bool, type(None))) for choice in choices):
            raise LitexpError(f"{where}: choices must be strings, numbers, booleans or null (not lists or mappings)")
        if len({json.dumps(choice) for choice in choices}) != len(choices):
            raise LitexpError(f"{where}: choices repeat a value")
        return CategoricalDistribution(choices)
    number = float if kind == "float" else int
    try:
        low, high = number(spec["low"]), number(spec["high"])
    except KeyError as error:
        raise LitexpError(f"{where}: {kind} needs low and high") from error
    except (TypeError, ValueError) as error:
        raise LitexpError(f"{where}: low and high must be {kind}s, got {spec.get('low')!r}, {spec.get('high')!r}") \
            from error
    if kind == "int" and (spec["low"] != low or spec["high"] != high):
        raise LitexpError(f"{where}: low and high must be integers, got {spec['low']!r}, {spec['high']!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise LitexpError(f"{where}: need finite low <= high, got low={low}, high={high}")
    log, step = bool(spec.get("log", False)), spec.get("step")
    if log and low <= 0:
        raise LitexpError(f"{where}: a log range needs low > 0, got low={low}")
    if log and step is not None:
        raise LitexpError(f"{where}: give either log or step, not both")
    if step is not None:
        if not isinstance(step, (int, float)) or step <= 0 or (kind == "int" and step != int(step)):
            raise LitexpError(f"{where}: step must be a positive {kind}, got {step!r}")
        step = number(step)
    try:
        if kind == "float":
            return FloatDistribution(low, high, log=log, step=step)
        return IntDistribution(low, high, log=log, step=step or 1)
    except ValueError as error:
        raise LitexpError(f"{where}: {error}") from error


def sample(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Draw one value per searched key (Optuna stores them under the CLI key)."""
    values = {}
    for key, dist in space.params.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, FloatDistribution):
            values[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log, step=dist.step)
        else:
            values[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
    return values


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true / false / null
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def cli_args(values: dict[str, Any]) -> list[str]:
    """``{"model.lr": 0.1}`` -> ``["--model.lr=0.1"]``."""
    return [f"--{key}={format_value(value)}" for key, value in values.items()]


def representative_values(dist: BaseDistribution) -> list[Any]:
    """The values that must all be accepted: both ends of a range, every choice."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high] if dist.low != dist.high else [dist.low]


def check_with_cli(space: SearchSpace, check: Callable[[dict[str, Any]], None]) -> None:
    """Run ``check({key: value})`` (parse and build, no training) for every key and end value.

    ``check`` raises ``LitexpError`` with the CLI's one-line reason; this names the key.
    """
    for key, dist in space.params.items():
        for value in representative_values(dist):
            try:
                check({key: value})
            except LitexpError as error:
                raise LitexpError(f"search space: {key}={format_value(value)} is not accepted: {error}") from None


# -- samplers ------------------------------------------------------------------------------------
class TrialSeededSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler whose random draws for trial n are a function of (seed, n).

    Each trial gets a fresh sampler seeded from (seed, n), so resumed studies and parallel workers
    never repeat a draw, and the same seed gives the same trial n in every run (a run without
    pruning trains exactly the same trials). TPE still reads the whole study's history.
    """

    def __init__(self, build: Callable[[int], optuna.samplers.BaseSampler], seed: int = 0) -> None:
        self.build, self.seed = build, seed
        self.samplers: dict[int, optuna.samplers.BaseSampler] = {}

    def for_trial(self, trial) -> optuna.samplers.BaseSampler:
        if trial.number not in self.samplers:
            seed = int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
            self.samplers = {trial.number: self.build(seed)}  # one trial at a time per process
        return self.samplers[trial.number]

    def infer_relative_search_space(self, study, trial):
        return self.for_trial(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.for_trial(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.for_trial(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        self.for_trial(trial).before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self.for_trial(trial).after_trial(study, trial, state, values)


def build_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    make = {"random": lambda s: optuna.samplers.RandomSampler(seed=s),
            "tpe": lambda s: optuna.samplers.TPESampler(seed=s)}[name]
    return TrialSeededSampler(make, seed)
