"""What W&B shows beyond the scalars Lightning logs: a run's facts, tags and media, and a study's own record.

Per run (``WandbMedia``, rank 0, only when the W&B logger is on):

- tags: task, network, data, split (``run_tags``), set when the logger is built;
- the run summary: every fact of ``summary.json`` (status, epochs, wall time, best score, split
  fingerprint, versions, device), flattened to ``fit.wall_time_s`` etc., at the end of the fit and of a test;
- media, for the split just evaluated (``val`` at the end of the fit, ``test`` after a test):
  classification: the confusion matrix (image and W&B's interactive chart) and a grid of misclassified
  images; language models: generated samples; seq2seq: translations next to their references, each
  with its attention heatmap; detection and segmentation: the first images with their ground truth and
  the predicted boxes or masks.

Per study (``log_study``): one more run in the study's group holding the trials table (parameters,
fold values, mean and std, state), the Optuna plots as images and the refit's single test result in
its summary. Every trial fold, refit and ``litexp compare`` variant is a run in that group already.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

MISCLASSIFIED_SHOWN = 32
SAMPLES_SHOWN = 3
TRANSLATIONS_SHOWN = 5


def run_tags(model, datamodule) -> list[str]:
    """The tags a dashboard filters by: ``task:...``, ``network:...``, ``data:...``, ``split:...``."""
    hparams = getattr(model, "hparams", {})
    split = "holdout" if getattr(datamodule, "num_folds", None) is None else f"kfold{datamodule.num_folds}"
    tags = [f"task:{type(model).__name__}", f"data:{type(datamodule).__name__}", f"split:{split}"]
    if hparams.get("network"):
        tags.insert(1, f"network:{hparams['network']}")
    return tags


def flatten(facts: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"fit": {"epochs": 3}}`` -> ``{"fit.epochs": 3}``; lists of numbers stay lists."""
    flat: dict[str, Any] = {}
    for key, value in facts.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def wandb_run(trainer):
    """The W&B run of this trainer's logger, or None (W&B off, or not rank 0)."""
    if not trainer.is_global_zero:
        return None
    logger = next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)
    return logger.experiment if logger is not None else None


class WandbMedia(Callback):
    """Summary facts and media into the run's W&B record (see the module's docstring); ``media=False``:
    the facts only (a study's folds)."""

    def __init__(self, run_dir: Path, media: bool = True) -> None:
        self.run_dir, self.media = Path(run_dir), media

    def on_fit_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module, "val")

    def on_test_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module, "test")

    def _log(self, trainer, pl_module, stage: str) -> None:
        run = wandb_run(trainer)
        if run is None or trainer.fast_dev_run:
            return
        try:
            summary = json.loads((self.run_dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        run.summary.update({key: value for key, value in flatten(summary).items() if value is not None})
        if not self.media:
            return
        loader = trainer.datamodule.val_dataloader() if stage == "val" else trainer.datamodule.test_dataloader()
        if not loader:
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                media = task_media(pl_module, trainer.datamodule, loader, stage)
        finally:
            pl_module.train(was_training)
        if media:
            run.log(media)


def task_media(task, datamodule, loader, stage: str) -> dict[str, Any]:
    from lit_models.tasks import ClassificationTask, LanguageModelTask, Seq2SeqTask

    if hasattr(task, "prediction_examples"):  # detection, segmentation: the pictures predict draws
        return prediction_pictures(task, datamodule, loader, stage)
    if isinstance(task, ClassificationTask):
        return classification_media(task, datamodule, loader, stage)
    if isinstance(task, LanguageModelTask):
        return language_model_media(task, stage)
    if isinstance(task, Seq2SeqTask):
        return translation_media(task, loader, stage)
    return {}


def _device_batch(task, datamodule, batch):
    batch = tuple(tensor.to(task.device) for tensor in batch)
    return datamodule.transform_batch(batch, training=False)


def classification_media(task, datamodule, loader, stage: str) -> dict[str, Any]:
    import wandb

    num_classes = int(task.hparams.num_classes)
    names = class_names(datamodule, num_classes)
    labels_seen, predicted_seen, wrong = [], [], []
    for raw in loader:
        images, labels = _device_batch(task, datamodule, raw)
        predicted = task(images).argmax(dim=-1).cpu()
        labels_seen.append(labels.cpu())
        predicted_seen.append(predicted)
        for index in torch.nonzero(predicted != labels.cpu()).flatten().tolist():
            if len(wrong) < MISCLASSIFIED_SHOWN:
                wrong.append((raw[0][index].cpu(), int(labels[index]), int(predicted[index])))
    labels, predicted = torch.cat(labels_seen), torch.cat(predicted_seen)
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    matrix.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)  # rows: true class
    media = {f"{stage}/confusion_matrix": wandb.Image(confusion_figure(matrix, names, stage)),
             f"{stage}/confusion_matrix_chart": wandb.plot.confusion_matrix(
                 y_true=labels.tolist(), preds=predicted.tolist(), class_names=names,
                 title=f"{stage} confusion matrix")}
    caption = f"first {len(wrong)} misclassified {stage} images: true -> predicted" if wrong else \
        f"no {stage} image is misclassified"
    media[f"{stage}/misclassified"] = wandb.Image(misclassified_figure(wrong, names), caption=caption)
    return media


def prediction_pictures(task, datamodule, loader, stage: str) -> dict[str, Any]:
    """The first images of the split with their ground truth and the predicted boxes or masks."""
    import tempfile

    import wandb
    from PIL import Image

    from experiments.pictures import write_pictures

    task.predict_step(_device_batch(task, datamodule, next(iter(loader))), 0)
    with tempfile.TemporaryDirectory() as folder:
        path = write_pictures(task.prediction_examples, Path(folder) / "pictures.png",
                              getattr(datamodule, "class_names", ()))
        if path is None:
            return {}
        with Image.open(path) as opened:
            picture = wandb.Image(opened.convert("RGB"), caption="left: ground truth, right: prediction")
    return {f"{stage}/predictions": picture}


def class_names(datamodule, num_classes: int) -> list[str]:
    names = list(getattr(getattr(datamodule, "dataset_class", None), "classes", []) or [])
    chosen = getattr(datamodule, "classes", None)
    if names and chosen is not None:
        names = [names[index] for index in chosen]
    return names if len(names) == num_classes else [str(index) for index in range(num_classes)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(matrix: torch.Tensor, names: list[str], stage: str):
    plt = _pyplot()
    size = 2.5 + 0.45 * len(names)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    rates = matrix.float() / matrix.sum(dim=1, keepdim=True).clamp(min=1)
    image = axis.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(names)), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for row in range(len(names)):
        for column in range(len(names)):
            if matrix[row, column]:
                axis.text(column, row, int(matrix[row, column]), ha="center", va="center", fontsize=6,
                          color="white" if rates[row, column] > 0.5 else "black")
    axis.set_title(f"{stage} confusion matrix (colour: share of the true class)", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    plt.close(figure)
    return figure


def misclassified_figure(wrong: list[tuple[torch.Tensor, int, int]], names: list[str]):
    """The misclassified images as one grid (torchvision's ``make_grid``, drawn on one axis: a figure of
    32 small axes took seconds to lay out), each under a band saying ``true -> predicted``."""
    from torchvision.utils import make_grid

    plt = _pyplot()
    columns = 8
    if not wrong:
        figure, axis = plt.subplots(figsize=(4, 1))
        axis.axis("off")
        figure.text(0.5, 0.5, "no misclassified image", ha="center", va="center")
        plt.close(figure)
        return figure
    pictures = []
    for image, _, _ in wrong:
        picture = image.float()
        picture = (picture - picture.min()) / (picture.max() - picture.min()).clamp(min=1e-6)
        pictures.append(picture.expand(3, -1, -1) if picture.shape[0] == 1 else picture)
    height, width = pictures[0].shape[-2:]
    band = max(14, height // 2)  # white room above each picture for its caption
    pictures = [torch.nn.functional.pad(picture, (0, 0, band, 0), value=1.0) for picture in pictures]
    padding = 2
    grid = make_grid(pictures, nrow=columns, padding=padding, pad_value=1.0)
    rows = (len(pictures) + columns - 1) // columns
    figure, axis = plt.subplots(figsize=(1.6 * min(columns, len(pictures)), 1.9 * rows))
    axis.imshow(grid.permute(1, 2, 0).numpy())
    axis.axis("off")
    for index, (_, true, predicted) in enumerate(wrong):
        row, column = divmod(index, columns)
        x = padding + column * (width + padding) + width / 2
        y = padding + row * (height + band + padding) + band / 2
        axis.text(x, y, f"{names[true]}\n-> {names[predicted]}", fontsize=7, ha="center", va="center")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    plt.close(figure)
    return figure


def language_model_media(task, stage: str) -> dict[str, Any]:
    import wandb

    from experiments.generate import sample

    if not task.vocab:
        return {}
    table = wandb.Table(columns=["seed", "generated"])
    for seed in range(SAMPLES_SHOWN):
        table.add_data(seed, sample(task, prefix="", num_tokens=60, seed=seed))
    return {f"{stage}/samples": table}


def translation_media(task, loader, stage: str) -> dict[str, Any]:
    import wandb
    from PIL import Image

    from experiments.translate import plot_attention
    from lit_models.tasks.keeps_vocab import vocab_tokens
    from lit_models.tasks.seq2seq import words

    src, src_len, tgt, tgt_len = (tensor[:TRANSLATIONS_SHOWN].to(task.device) for tensor in next(iter(loader)))
    source_words, target_words = vocab_tokens(task.vocab)["source"], vocab_tokens(task.vocab)["target"]
    table = wandb.Table(columns=["source", "reference", "translation", "attention"])
    heatmaps = []
    for index, hypothesis in enumerate(task.translate_ids(src, src_len)):
        source = words(source_words, src[index, : int(src_len[index])].tolist())
        translation = words(target_words, hypothesis.tokens)
        picture = None
        if hypothesis.attention is not None:
            import tempfile

            with tempfile.TemporaryDirectory() as folder:
                path = plot_attention(Path(folder) / "attention.png", hypothesis.attention.cpu(),
                                      source + ["<eos>"], translation + ["<eos>"])
                with Image.open(path) as opened:
                    picture = wandb.Image(opened.convert("RGB"), caption=" ".join(translation))  # in memory
                heatmaps.append(picture)
        table.add_data(" ".join(source), " ".join(words(target_words, tgt[index, : int(tgt_len[index])].tolist())),
                       " ".join(translation), picture)
    media = {f"{stage}/translations": table}
    if heatmaps:  # also on their own: a table's images live in its artifact, these in the run's media panel
        media[f"{stage}/attention"] = heatmaps
    return media


# -- a study's own record -------------------------------------------------------------------------------
def option_value(args: list[str], name: str, default: Optional[str]) -> Optional[str]:
    """The value of ``--name=value`` or ``--name value`` in ``args`` (the last one wins)."""
    value = default
    for index, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            value = arg.split("=", 1)[1]
        elif arg == name and index + 1 < len(args):
            value = args[index + 1]
    return value


def log_study(study, report: dict[str, Any], study_dir: Path, base_args: list[str]) -> Optional[str]:
    """One W&B run in the study's group with the trials table, the plots and the test result; its id or None."""
    from experiments.run import resolve_wandb_mode

    mode = resolve_wandb_mode(option_value(base_args, "--wandb.mode", "auto"))
    if mode == "disabled":
        return None
    import optuna
    import wandb

    name = report["study"]["name"]
    run = wandb.init(project=option_value(base_args, "--wandb.project", "litexp"),
                     entity=option_value(base_args, "--wandb.entity", None), group=name, name=f"{name}/study",
                     job_type="study", mode=mode, dir=str(study_dir), tags=["study"], reinit="finish_previous",
                     config={"study": report["study"]}, settings={"init_timeout": 60, "console": "off"})
    try:
        params = sorted({key for trial in study.trials for key in trial.params})
        table = wandb.Table(columns=["trial", "state", *params, "value", "std", "fold_values"])
        for trial in study.trials:
            fold_values = trial.user_attrs.get("fold_values")
            table.add_data(trial.number, trial.state.name, *[trial.params.get(key) for key in params],
                           trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None,
                           trial.user_attrs.get("fold_std"), json.dumps(fold_values) if fold_values else None)
        media: dict[str, Any] = {"study/trials": table}
        for plot, files in report.get("plots", {}).items():
            if "png" in files and (study_dir / files["png"]).exists():
                media[f"study/{plot}"] = wandb.Image(str(study_dir / files["png"]), caption=files.get("note"))
        run.log(media)
        best, test = report["best"], report["test"]
        run.summary.update({"best.trial": best["number"], "best.value": best["value"], "best.std": best.get("std"),
                            **{f"best.params.{key}": value for key, value in best["params"].items()},
                            **{f"test.{key}": value for key, value in test.get("metrics", {}).items()},
                            **{f"trials.{key}": value for key, value in report.get("trials", {}).items()}})
        return run.id
    finally:
        run.finish()


def log_comparison(comparison, curves: Path, overrides: list[str]) -> Optional[str]:
    """One W&B run in a comparison's group (its files under the comparison's folder) with its table (mean and
    std per variant, verdict) and the ``curves`` picture."""
    from experiments.run import resolve_wandb_mode

    mode = resolve_wandb_mode(option_value(overrides, "--wandb.mode", "auto"))
    if mode == "disabled":
        return None
    import wandb

    run = wandb.init(project=option_value(overrides, "--wandb.project", "litexp"),
                     entity=option_value(overrides, "--wandb.entity", None), group=comparison.name,
                     name=f"{comparison.name}/comparison", job_type="comparison", mode=mode, dir=str(comparison.study),
                     tags=["comparison"], reinit="finish_previous",
                     config={"metric": comparison.metric, "seeds": comparison.seeds,
                             "variants": {variant.name: list(variant.overrides) for variant in comparison.variants}},
                     settings={"init_timeout": 60, "console": "off"})
    try:
        table = wandb.Table(columns=["variant", "runs", f"{comparison.metric} mean", f"{comparison.metric} std",
                                     "train/loss mean", "val/loss mean", "time_s mean", "verdict"])
        for row in comparison.rows:
            table.add_data(row["variant"], len(row["statuses"]), *row["final"], row["train_loss"][0],
                           row["val_loss"][0], row["time_s"][0], row.get("verdict"))
        media: dict[str, Any] = {"comparison/table": table}
        if curves.exists():
            media["comparison/curves"] = wandb.Image(str(curves))
        run.log(media)
        return run.id
    finally:
        run.finish()
