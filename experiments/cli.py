"""The ``litexp`` command: LightningCLI for fit/validate/test/predict, plus one-line errors.

``litexp fit`` with no config runs the default experiment (LeNet on Fashion-MNIST). The model and
the data are chosen by class name (``--model ClassificationTask --data FashionMNIST``), the
network by registry name (``--model.network lenet``); the data tells the model its input shape
and class count (``link_arguments``), so configs never repeat them.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys
import time
from argparse import ArgumentError
from pathlib import Path
from typing import Optional

import yaml
from jsonargparse import ActionYesNo
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import seed_everything
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

import datamodules  # noqa: F401  (registers every DataModule class for --data lookup)
import lit_models
from datamodules import DataModule
from experiments.console import configure_output, result_paragraph
from experiments.curves import write_curves
from experiments.evaluation import (
    EVAL_COMMANDS,
    check_checkpoint_fits,
    evaluation_dir,
    read_checkpoint,
    resolve_run_directory,
)
from experiments.lifecycle import Interrupted, RandomState, StopOnSignal, end_other_rank
from experiments.memory import keep_freed_memory
from experiments.resume import ResumePoint, resume_arguments
from experiments.run import (
    RUN_DIR_ENV,
    ConfigToLoggers,
    DivergenceGuard,
    NoProfiler,
    PredictionCSV,
    RunOptions,
    RunSummary,
    WandbOptions,
    build_checkpoints,
    build_loggers,
    new_run_dir,
)
from experiments.wandb_media import WandbMedia, run_tags
from lit_models import LitexpError, Task

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "fashion_mnist" / "lenet.yaml"
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# what the data tells the model: data.<name> -> model.init_args.<name> (a task without <name> skips it)
LINKED_ATTRIBUTES = ("num_classes", "input_shape", "in_features", "num_outputs", "vocab_size", "carry_state",
                     "src_vocab_size", "tgt_vocab_size", "max_len")
HELP_EPILOG = ("The options of a model or data class: --model.help CLASS, --data.help CLASS (e.g. litexp fit "
               "--model.help ClassificationTask, litexp fit --data.help FashionMNIST). Runs go to "
               "<run.root>/<run.name>/<run.version>; --trainer.default_root_dir sets run.root. A stopped or "
               "killed fit continues in its own directory with: litexp fit --resume <run dir> (optionally "
               "--trainer.max_epochs=N to train a finished one longer).")


class LitexpCLI(LightningCLI):
    def __init__(self, args: list[str], stop_on_signal: Optional[StopOnSignal] = None,
                 resume: Optional[ResumePoint] = None) -> None:
        """Parse ``args`` (a subcommand first: fit, validate, test or predict) and run it."""
        self.run_dir: Optional[Path] = None
        self.given_run_dir: Optional[Path] = None  # rebuild(): the run directory chosen by the caller
        self.lock_test = False  # rebuild(): the data refuses to read its test split (a search's runs)
        self.media = True  # W&B media at the end of a fit (rebuild(): a study's folds log facts and scalars)
        self.args = list(args)
        self.stop_on_signal = stop_on_signal  # fit only: a clean stop on SIGINT/SIGTERM
        self.resume = resume  # fit --resume: the run continued in place
        super().__init__(
            model_class=Task,
            datamodule_class=DataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=ConfigToLoggers,
            save_config_kwargs={"overwrite": True},
            # our batch sampler shards batches across ranks itself (see datamodules.base)
            trainer_defaults={"use_distributed_sampler": False},
            seed_everything_default=0,
            parser_kwargs={"exit_on_error": False, "allow_abbrev": False,
                           **{command: {"epilog": HELP_EPILOG} for command in LIGHTNING_COMMANDS}},
            auto_configure_optimizers=False,
            args=args,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run", type=RunOptions, default=RunOptions(), help="run directory layout")
        parser.add_argument("--wandb", type=WandbOptions, default=WandbOptions(), help="W&B logging")
        parser.add_argument("--test", action=ActionYesNo, default=False,
                            help="fit only: evaluate the best checkpoint on the test split afterwards")
        parser.add_argument("--quiet", action=ActionYesNo, default=False,
                            help="for scripts: no progress bar, no model summary, no run directory or result lines")
        for name in LINKED_ATTRIBUTES:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")

    def _parse_ckpt_path(self) -> None:
        """validate/test/predict: a readable checkpoint that fits the config, before Lightning merges its
        hyperparameters into the config (and before any data is read or file written)."""
        command = self.config.get("subcommand")
        if command in EVAL_COMMANDS:
            config = self.config[command]
            checkpoint = read_checkpoint(config.get("ckpt_path"), command)
            model = config.model
            arguments = model.init_args.as_dict() if hasattr(model.init_args, "as_dict") else dict(model.init_args)
            check_checkpoint_fits(checkpoint, config.ckpt_path, model.class_path, arguments)
        super()._parse_ckpt_path()

    def instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        self.config_init = self.parser.instantiate_classes(self.config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        if self.lock_test:
            self.datamodule.lock_test_split()
        missing = [name for name in self.model.data_attributes if not hasattr(self.datamodule, name)]
        if missing:
            raise LitexpError(f"{type(self.model).__name__} needs data that provides {', '.join(missing)}; "
                              f"{type(self.datamodule).__name__} does not: choose a matching --model or --data")
        stage = self.subcommand
        # read and split the data now, so a missing file or impossible split fails before any
        # file of the run is written
        if stage == "fit":
            self.datamodule.prepare_data()
        self.datamodule.setup(stage)

        network = getattr(self.model, "hparams", {}).get("network", type(self.model).__name__)
        default_name = f"{network}-{type(self.datamodule).__name__}".lower()
        self.run_dir = None
        named = any(arg.startswith(("--run.name", "--run.version")) for arg in self.args)
        main_process = is_main_process()  # only global rank 0 creates, replaces and writes the run directory
        if self.given_run_dir is not None:  # rebuild(): chosen by the caller, never shared through the env
            self.run_dir = fresh_run_dir(self.given_run_dir)
        elif stage in EVAL_COMMANDS and not named and not os.environ.get(RUN_DIR_ENV):  # into the evaluated run
            self.run_dir = evaluation_dir(config.ckpt_path, stage, time.strftime("%Y%m%d-%H%M%S"))
        if self.run_dir is None:
            self.run_dir = new_run_dir(config.run, default_name, root=runs_root(config), claim=main_process)
            os.environ[RUN_DIR_ENV] = str(self.run_dir)  # ranks that Lightning launches reuse it
        label = f"{config.run.name or default_name}/{self.run_dir.name}"
        quiet = bool(config.get("quiet"))
        configure_output(quiet)

        trainer_config = self._get(self.config_init, "trainer", default={})
        callbacks = list(trainer_config.get("callbacks") or [])
        callbacks.append(RunSummary(self.run_dir, seed=config.get("seed_everything"), command=self.subcommand))
        if stage == "fit":
            callbacks.extend([DivergenceGuard(), RandomState()])
            if self.stop_on_signal is not None:
                self.stop_on_signal.run_dir = self.run_dir
                callbacks.append(self.stop_on_signal)
        if trainer_config.get("enable_checkpointing") is not False and stage == "fit":
            has_validation = self.datamodule.has_validation
            callbacks.extend(build_checkpoints(self.run_dir, self.model, has_validation))
        if stage == "predict":
            callbacks.append(PredictionCSV(self.run_dir))
        else:
            callbacks.append(WandbMedia(self.run_dir, self.media))  # facts and media, when the W&B logger is on
        self.trainer = self.instantiate_trainer(
            default_root_dir=str(self.run_dir),
            logger=build_loggers(self.run_dir, config.wandb, label, resume=self.resume,
                                 tags=run_tags(self.model, self.datamodule)),
            callbacks=callbacks,
            **({"enable_progress_bar": False, "enable_model_summary": False} if quiet else {}),
            **({} if trainer_config.get("profiler") else {"profiler": NoProfiler()}),
        )
        try:  # the run's first write: an unwritable root fails here, in one line, before any training
            if main_process:
                self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LitexpError(f"cannot create the run directory {self.run_dir} ({error.strerror}); choose a "
                              f"writable --run.root") from None
        if not quiet and stage == "fit" and main_process:  # the first line of a fit that will train
            print(f"litexp: run directory {self.run_dir}", file=sys.stderr, flush=True)

    def rebuild(self, config, run_dir: Path, lock_test: bool = False, media: bool = True,
                config_dump: Optional[dict] = None) -> None:
        """Another run of this parsed CLI without parsing again: ``config`` (a copy of ``self.config`` with
        other values set, e.g. a study's trial and fold) built into model, data and trainer, seeded as a
        parsed fit is, writing into ``run_dir``; ``lock_test``: its data refuses to read the test split;
        ``media``: W&B pictures and tables at the end of the fit (scalars are always logged);
        ``config_dump``: ``config``'s ``fit`` part as LightningCLI dumps it (saved with the model's
        hyperparameters), when the caller has it without dumping again."""
        self.config, self.given_run_dir, self.lock_test, self.media = config, Path(run_dir), lock_test, media
        self.__dict__.pop("config_dump", None)  # LightningCLI's cached dump of the previous config
        if config_dump is not None:
            self.config_dump = config_dump
        seed = config[self.subcommand].get("seed_everything")
        if seed is not False:  # as LightningCLI seeds a parsed fit (True was drawn once, when parsed)
            seed_everything(seed, workers=True)
        self.before_instantiate_classes()
        self.instantiate_classes()
        self.after_instantiate_classes()

    def after_fit(self) -> None:
        if not self.config[self.subcommand].get("test"):
            return
        if self.stop_on_signal is not None and self.stop_on_signal.signum is not None:
            return  # stopped by a signal during the last epoch: no test after it
        # the best checkpoint by path: "best" would make Lightning note that there are two checkpoint callbacks
        checkpoints = self.trainer.checkpoint_callback  # None with --trainer.enable_checkpointing=false
        best = None if self.trainer.fast_dev_run or checkpoints is None else (checkpoints.best_model_path or "best")
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best, weights_only=True)


def fresh_run_dir(path: Path) -> Path:
    """``path`` as a run directory chosen by the caller: it must not hold an earlier run."""
    if path.exists() and any(path.iterdir()):
        raise LitexpError(f"run directory {path} exists and is not empty; an earlier run is never overwritten")
    return path


def is_main_process() -> bool:
    """Global rank 0 (before the Trainer exists): torchrun sets RANK; srun SLURM_PROCID (read as Lightning's
    SLURMEnvironment does: SLURM_NTASKS set, job name not bash/interactive); Lightning's launcher NODE_RANK and
    LOCAL_RANK."""
    if "RANK" in os.environ:
        return os.environ["RANK"] == "0"
    if "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        return os.environ.get("SLURM_PROCID", "0") == "0"
    return os.environ.get("NODE_RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def runs_root(config) -> str:
    """``--run.root``, or Lightning's ``--trainer.default_root_dir`` when only that one is given."""
    root_dir = (config.get("trainer") or {}).get("default_root_dir")
    if root_dir is None or str(root_dir) == config.run.root:
        return config.run.root
    if config.run.root != RunOptions.root:
        raise LitexpError(f"--trainer.default_root_dir={root_dir} and --run.root={config.run.root} disagree; "
                          f"give one of them")
    return str(root_dir)


# -- errors --------------------------------------------------------------------------------------
_BOILERPLATE = ("Does not validate against", "Subtypes:", "Errors:", "Given value", "Expected a <class 'NoneType'>",
                "Problem with given class_path", "Parser key")


def _class_names(base: type) -> list[str]:
    names, stack = set(), [base]
    while stack:
        for subclass in stack.pop().__subclasses__():
            if not subclass.__dict__.get("abstract", False):
                names.add(subclass.__name__)
            stack.append(subclass)
    return sorted(names)


def summarize_parse_error(message: str, command: str) -> str:
    """Turn jsonargparse's nested report into one line that says what to change."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    where = ".".join(k for k in keys if k) or None
    if "dot import path" in message or "does not correspond to a subclass" in message \
            or "not accessible or invalid" in message:
        group = (where or "").split(".")[0]
        given = re.search(r"Given value: (\S+)", message)
        valid = _class_names(Task if group == "model" else DataModule)
        name = given.group(1) if given else "?"
        return f"unknown {group or 'class'} {name!r}; valid {group or 'classes'}: {', '.join(valid)}"
    if message.startswith("unrecognized arguments:"):
        return f"{message.strip()}; run 'litexp {command} --help' for the valid options"
    restriction = re.search(r"Not of type \w+: (\S+) does not conform to restriction v(>=?)0", message)
    if restriction:
        value, bound = restriction.groups()
        return f"{where or 'value'} must be {bound} 0, got {value}"
    lines = [line.strip(" -") for line in message.splitlines()]
    details = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
    detail = details[-1] if details else lines[0]
    option = re.search(r"Option '([^']+)' is not accepted|Key '([^']+)' is not expected", message)
    if option:
        name = option.group(1) or option.group(2)
        return f"{where + ': ' if where else ''}no option {name!r}; run 'litexp {command} --help' for the valid ones"
    return f"{where + ': ' if where else ''}{detail}"


def _user_error(error: BaseException) -> Optional[LitexpError]:
    """The user's mistake behind an exception: a LitexpError, or a Trainer setting Lightning refused."""
    while error is not None:
        if isinstance(error, LitexpError):
            return error
        if isinstance(error, MisconfigurationException):
            return LitexpError(f"invalid Trainer setting: {str(error).splitlines()[0]}")
        error = error.__cause__ or error.__context__
    return None


def with_default_config(argv: list[str]) -> list[str]:
    """``litexp fit`` without a config, model or data runs the default experiment."""
    if argv and argv[0] == "fit" and not any(
        arg in ("-c", "--config", "--model", "--data", "-h", "--help")
        or arg.startswith(("--config=", "--model=", "--data="))
        for arg in argv[1:]
    ):
        return [argv[0], "--config", str(DEFAULT_CONFIG), *argv[1:]]
    return argv


def check_config_files(argv: list[str]) -> None:
    """Every ``--config`` file exists and is YAML; a syntax error names the file, the line and the problem."""
    for index, arg in enumerate(argv):
        if arg in ("-c", "--config") and index + 1 < len(argv):
            path = Path(argv[index + 1])
        elif arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1])
        else:
            continue
        if not path.is_file():
            raise LitexpError(f"config file {path} {'is a directory' if path.is_dir() else 'does not exist'}; "
                              f"give a YAML file, e.g. experiments/configs/fashion_mnist/lenet.yaml")
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise LitexpError(f"config file {path} is not UTF-8 text (byte {error.start})") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise LitexpError(f"config file {path}: {where}{problem}; fix the YAML there") from None


def run_lightning(argv: list[str]) -> int:
    set_here = RUN_DIR_ENV not in os.environ
    configure_output()
    stop: Optional[StopOnSignal] = None
    drawn = False
    try:
        check_config_files(argv)
        if argv[0] == "fit":
            argv, resume = resume_arguments(argv)
            if resume is not None:
                os.environ[RUN_DIR_ENV] = str(resume.run_dir)  # in place: the run's own directory
            with StopOnSignal(Path(".")) as stop:
                cli = LitexpCLI(with_default_config(argv), stop_on_signal=stop, resume=resume)
            if is_main_process():
                write_curves(cli.run_dir)
                drawn = True
            if not cli.config[cli.subcommand].get("quiet") and is_main_process():
                print(result_paragraph(cli.run_dir) or f"litexp: fit ended; files in {cli.run_dir}", file=sys.stderr)
            if stop.signum is not None:  # the signal came during the last epoch, which ended the fit
                print(f"litexp: interrupted by {signal.Signals(stop.signum).name} during the last epoch; the fit "
                      f"completed first (summary.json in {stop.run_dir})", file=sys.stderr)
                return 128 + stop.signum
        else:
            cli = LitexpCLI(resolve_run_directory(with_default_config(argv)))
            if argv[0] in EVAL_COMMANDS and cli.run_dir is not None and not cli.config[cli.subcommand].get("quiet"):
                where = cli.run_dir / "predictions.csv" if argv[0] == "predict" else cli.run_dir / "summary.json"
                print(f"litexp: {argv[0]} results written to {where}", file=sys.stderr)
    except (Interrupted, SIGTERMException) as stopped:
        fallback = stopped if isinstance(stopped, Interrupted) else Interrupted(signal.SIGTERM, -1, -1)
        interrupt = stop.stopped or fallback
        run = stop.run_dir
        print(f"litexp: {interrupt}; checkpoints/last.ckpt and summary.json written to {run}; continue it with: "
              f"litexp fit --resume {run}", file=sys.stderr)
        return interrupt.exit_code
    except ArgumentError as error:
        print(f"litexp: error: {summarize_parse_error(str(error), argv[0])}", file=sys.stderr)
        return 2
    except Exception as error:
        user_error = _user_error(error)
        if user_error is None or os.environ.get("LITEXP_DEBUG"):
            raise
        print(f"litexp: error: {user_error}", file=sys.stderr)
        return 2
    finally:
        if stop is not None and not drawn and stop.run_dir != Path(".") and is_main_process():
            write_curves_quietly(stop.run_dir)  # a stopped, diverged or failed fit shows its curves too
        if set_here:
            os.environ.pop(RUN_DIR_ENV, None)
        finish_wandb_run()
    return 0


def write_curves_quietly(run_dir: Path) -> None:
    """``curves.png`` after a fit that did not complete: never hides the error being reported."""
    try:
        write_curves(run_dir)
    except Exception as error:  # noqa: BLE001 - the run's own error is the one to report
        print(f"litexp: warning: could not draw {run_dir / 'curves.png'}: {error}", file=sys.stderr)


def finish_wandb_run() -> None:
    """End this process's W&B run, if one was opened: Lightning leaves it open, and a later run in this
    process (or one resuming it through the same W&B service) would find its id still in use."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


USAGE = """usage: litexp COMMAND [options]   (litexp fit --help, litexp tune --help, ... for all options)

  fit        train a model (no config: LeNet on Fashion-MNIST); --test evaluates the best checkpoint;
             fit --resume <run dir> continues a stopped or killed fit in its own directory
  validate   evaluate a checkpoint on the validation split (--ckpt_path)
  test       evaluate a checkpoint on the test split (--ckpt_path)
  predict    write predictions.csv for the test split (--ckpt_path)
  networks   list the registered networks
  tune       hyperparameter study: Optuna trials scored by K-fold cross-validation
  compare    variants of one experiment (--vary KEY=V1,V2 ... --seeds N) side by side: report and curves
  lab        the chapters' experiments (optimizers, schedules, init, vanishing, overfitting, polynomial,
             batchnorm) as one-command reports in experiments/reports/lab/ (litexp lab list)
  zoo        train the CNN zoo and write experiments/reports/zoo.md
  lm-report  RNN/GRU/LSTM language models on real English text next to n-gram baselines:
             experiments/reports/lm.md
  generate   generate text from a language-model checkpoint
  translate  translate sentences with a seq2seq checkpoint (beam search, attention heatmaps)
  word2vec   export embeddings / print the nearest words of a word2vec checkpoint
"""


def list_networks_command(argv: list[str]) -> int:
    for name in lit_models.list_networks():
        print(name)
    return 0


# commands beyond LightningCLI's: name -> module whose ``main(argv) -> int`` runs it (imported lazily)
EXTRA_COMMANDS: dict[str, str] = {
    "tune": "experiments.tune",
    "compare": "experiments.compare",
    "lab": "experiments.lab",
    "zoo": "experiments.zoo",
    "lm-report": "experiments.lm_report",
    "generate": "experiments.generate",
    "translate": "experiments.translate",
    "word2vec": "experiments.word2vec",
}


def main(argv: Optional[list[str]] = None) -> int:
    code = run_command(list(sys.argv[1:] if argv is None else argv))
    if argv is None:  # this process's own command line: a DDP rank other than 0 ends here
        end_other_rank(code)
    return code


def run_command(argv: list[str]) -> int:
    keep_freed_memory()  # before any model or data is built: see experiments/memory.py
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = argv[0]
    if command == "networks":
        return list_networks_command(argv[1:])
    if command in LIGHTNING_COMMANDS:
        return run_lightning(argv)
    if command in EXTRA_COMMANDS:
        return importlib.import_module(EXTRA_COMMANDS[command]).main(argv[1:])
    valid = (*LIGHTNING_COMMANDS, "networks", *EXTRA_COMMANDS)
    print(f"litexp: error: unknown command {command!r}; choose one of {', '.join(valid)}", file=sys.stderr)
    return 2




if __name__ == "__main__":
    sys.exit(main())
