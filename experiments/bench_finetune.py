"""Fine-tuning against training from scratch on classes the pretrained network never saw.

LeNet with batch norm (``fashion_mnist/lenet_modern.yaml``) is pretrained on Fashion-MNIST's
T-shirt..coat (classes 0-4); then sandal..ankle boot (5-9) get the same small budget twice: from
scratch, and fine-tuned from the pretrained checkpoint (its conv layers load, the three dense layers
are a new head, the backbone trains at lr x 0.1). Prints both test accuracies and their difference.

    python -m experiments.bench_finetune [--pretrain_batches 100] [--budget_batches 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Optional

from experiments.cli import CONFIG_DIR, main

PRETRAIN_CLASSES = "--data.classes=[0,1,2,3,4]"
NEW_CLASSES = "--data.classes=[5,6,7,8,9]"


def fit(root: Path, name: str, *options: str) -> dict:
    """One epoch of ``litexp fit --test`` on lenet_modern; returns the run's summary."""
    code = main(["fit", "--config", str(CONFIG_DIR / "fashion_mnist/lenet_modern.yaml"), "--test",
                 "--run.root", str(root), "--run.name", name, "--trainer.enable_progress_bar=false",
                 "--trainer.enable_model_summary=false", "--trainer.max_epochs=1", "--trainer.limit_val_batches=1",
                 "--trainer.limit_test_batches=8", "--data.batch_size=128", "--wandb.mode=disabled", *options])
    if code != 0:
        raise SystemExit(code)
    (summary,) = (root / name).glob("*/summary.json")
    return json.loads(summary.read_text())


def pretrain(root: Path, batches: int) -> Path:
    """The last checkpoint of a network trained on classes 0-4 for ``batches`` steps."""
    fit(root, "pretrain", PRETRAIN_CLASSES, f"--trainer.limit_train_batches={batches}")
    return next((root / "pretrain").glob("*/checkpoints/last.ckpt"))


def fine_tune(root: Path, checkpoint: Path, batches: int) -> dict:
    return fit(root, "tuned", NEW_CLASSES, f"--trainer.limit_train_batches={batches}",
               f"--model.pretrained={checkpoint}", "--model.backbone_lr_mult=0.1")


def run(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrain_batches", type=int, default=100)
    parser.add_argument("--budget_batches", type=int, default=4, help="training steps on the new classes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        checkpoint = pretrain(Path(root), args.pretrain_batches)
        scratch = fit(Path(root), "scratch", NEW_CLASSES, f"--trainer.limit_train_batches={args.budget_batches}")
        tuned = fine_tune(Path(root), checkpoint, args.budget_batches)
    scratch_acc, tuned_acc = scratch["test"]["metrics"]["test/acc"], tuned["test"]["metrics"]["test/acc"]
    print(f"test acc on classes 5-9 after {args.budget_batches} steps: fine-tuned {tuned_acc:.3f}, "
          f"from scratch {scratch_acc:.3f}, difference {tuned_acc - scratch_acc:+.3f}")


if __name__ == "__main__":
    run()
