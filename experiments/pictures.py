"""Pictures of detection and segmentation predictions, written by ``litexp predict`` next to predictions.csv.

A task that keeps ``prediction_examples`` (``kind``: detection or segmentation; ``images``, ``truth``,
``predicted`` of the first images of the predicted split) gets ``pictures.png``: each image with its
ground truth on the left and the prediction on the right (boxes with class and score, or coloured masks).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MIN_SCORE = 0.3  # detections drawn: at least this confident (and at most MAX_BOXES per image)
MAX_BOXES = 10
PAIRS_PER_ROW = 4


def _show(axis, image: torch.Tensor) -> int:
    """Draw a (C, H, W) image scaled to [0, 1]; returns its side in pixels."""
    image = image.float()
    image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-6)
    if image.shape[0] == 1:
        axis.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        axis.imshow(image[:3].permute(1, 2, 0).numpy())
    axis.set_xticks([])
    axis.set_yticks([])
    return image.shape[-1]


def _boxes(axis, boxes: torch.Tensor, labels: torch.Tensor, side: int, colour: str, names: Sequence[str],
           scores: Optional[torch.Tensor] = None) -> None:
    for index, (box, label) in enumerate(zip(boxes.tolist(), labels.tolist(), strict=True)):
        x1, y1, x2, y2 = (value * side - 0.5 for value in box)
        axis.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.2))
        name = names[label] if label < len(names) else str(label)
        text = name if scores is None else f"{name} {float(scores[index]):.2f}"
        axis.text(x1, y1, text, color="white", fontsize=6, va="bottom",
                  bbox={"facecolor": colour, "alpha": 0.7, "pad": 0.5, "linewidth": 0})


def _mask_colours(num_labels: int) -> np.ndarray:
    palette = plt.get_cmap("tab10" if num_labels <= 11 else "tab20")
    colours = np.zeros((max(num_labels, 1), 3))  # background black
    colours[1:] = palette(np.arange(num_labels - 1) % palette.N)[:, :3]
    return colours


def write_pictures(examples: dict[str, Any], path: Path, class_names: Sequence[str] = ()) -> Optional[Path]:
    """Draw ``examples`` into ``path`` (a PNG); nothing when there are none."""
    images = examples.get("images")
    if images is None or len(images) == 0:
        return None
    count = len(images)
    rows = math.ceil(count / PAIRS_PER_ROW)
    figure, axes = plt.subplots(rows, 2 * PAIRS_PER_ROW, figsize=(2 * PAIRS_PER_ROW * 1.6, rows * 1.7), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    names = list(class_names)
    if examples["kind"] == "segmentation":
        num_labels = max(int(examples["truth"].max()), int(examples["predicted"].max()), len(names)) + 1
        colours = _mask_colours(num_labels)
    for index in range(count):
        truth_axis, predicted_axis = axes[index // PAIRS_PER_ROW, 2 * (index % PAIRS_PER_ROW):][:2]
        for axis in (truth_axis, predicted_axis):
            axis.axis("on")
        side = _show(truth_axis, images[index])
        _show(predicted_axis, images[index])
        if examples["kind"] == "detection":
            truth, predicted = examples["truth"][index], examples["predicted"][index]
            _boxes(truth_axis, truth["boxes"], truth["labels"], side, "tab:green", names)
            shown = (predicted["scores"] >= MIN_SCORE).nonzero().flatten()[:MAX_BOXES]  # best first
            _boxes(predicted_axis, predicted["boxes"][shown], predicted["labels"][shown], side, "tab:red", names,
                   predicted["scores"][shown])
        else:
            for axis, mask in ((truth_axis, examples["truth"][index]), (predicted_axis, examples["predicted"][index])):
                axis.imshow(colours[mask.numpy()], alpha=0.6)
        truth_axis.set_title("truth", fontsize=7)
        predicted_axis.set_title("predicted", fontsize=7)
    if examples["kind"] == "segmentation" and names:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[label + 1]) for label in range(len(names))]
        figure.legend(handles, names, loc="lower center", ncol=min(len(names), 10), fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.04 if examples["kind"] == "segmentation" else 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.png")
    figure.savefig(partial, dpi=110)
    plt.close(figure)
    partial.replace(path)
    return path
