"""Translation report: seq2seq, Bahdanau attention and Transformer on the toy language, BLEU by sentence length.

Trains each model on the generated toy corpus (:mod:`datamodules.toy_language`) with
``litexp fit --config experiments/configs/translation/toy_<model>.yaml --test`` and prints the
test BLEU overall and per source-length bucket, with the median training time per epoch:

    python -m experiments.bench_translation [--pairs 10000] [--epochs N] [--models seq2seq,attention,transformer]

Long sentences are where a single context vector (plain seq2seq) falls behind attention.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch
import yaml
from torchmetrics.text import BLEUScore

from datamodules.translation import TOY_PAIRS
from experiments.cli import CONFIG_DIR
from experiments.cli import main as litexp_main
from lit_models import Seq2SeqTask, decoding
from lit_models.tasks import reference_text

TOY_CONFIGS = {name: CONFIG_DIR / "translation" / f"toy_{name}.yaml"
               for name in ("seq2seq", "attention", "transformer")}


def bleu_by_length(task: Seq2SeqTask, batches: Sequence[tuple[torch.Tensor, ...]],
                   edges: Sequence[int] = (12, 20)) -> dict[str, dict[str, float]]:
    """Corpus BLEU of the decoded test sentences, overall and per bucket of source length (tokens, <eos> included).

    Buckets: ``<= edges[0]``, ..., ``> edges[-1]``. Scored like the task's ``test/bleu`` (same weights, ids).
    """
    names = [f"<= {edges[0]}"] + [f"{a + 1}-{b}" for a, b in zip(edges, edges[1:], strict=False)] + [f"> {edges[-1]}"]
    weights = decoding.bleu_weights(task.hparams.bleu_n_gram, task.hparams.bleu_weights)
    metrics = {name: BLEUScore(task.hparams.bleu_n_gram, weights=weights) for name in ["all", *names]}
    counts = dict.fromkeys(metrics, 0)
    for src, src_len, tgt, tgt_len in batches:
        for hypothesis, row, length, source_length in zip(task.translate_ids(src, src_len), tgt.tolist(),
                                                           tgt_len.tolist(), src_len.tolist(), strict=True):
            bucket = names[sum(source_length > edge for edge in edges)]
            prediction, reference = " ".join(map(str, hypothesis.tokens)), reference_text(row[:length])
            for name in ("all", bucket):
                metrics[name].update([prediction], [[reference]])
                counts[name] += 1
    return {name: {"bleu": round(float(metric.compute()), 4) if counts[name] else float("nan"),
                   "sentences": counts[name]} for name, metric in metrics.items()}


def evaluate_run(run_dir: Path, data_path: Optional[Path] = None) -> dict:
    """BLEU by length of a finished ``litexp fit`` run (best checkpoint) on its test split.

    The data is the run's own (its ``config.yaml``), read from ``data_path`` when given.
    """
    from datamodules.translation import ParallelCorpus
    from experiments.generate import load_text_task

    summary = json.loads((run_dir / "summary.json").read_text())
    task = load_text_task(summary["fit"]["best_checkpoint"], Seq2SeqTask)
    data_args = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["init_args"]
    datamodule = ParallelCorpus(**{**data_args, **({"path": str(data_path)} if data_path else {})})
    datamodule.setup("test")
    if datamodule.vocab != task.vocab:
        raise RuntimeError("the data's vocabulary differs from the checkpoint's")
    return {"epoch_times_s": summary["fit"]["epoch_times_s"], "epochs": summary["fit"]["epochs"],
            "test_bleu": summary["test"]["metrics"]["test/bleu"],
            "by_length": bleu_by_length(task, list(datamodule.test_dataloader()))}


def train(model: str, run_root: Path, extra: Sequence[str] = ()) -> Path:
    code = litexp_main(["fit", "--config", str(TOY_CONFIGS[model]), "--test", "--run.root", str(run_root),
                        "--run.name", model, "--trainer.enable_progress_bar", "false", *extra])
    if code != 0:
        raise RuntimeError(f"litexp fit failed for {model} (exit {code})")
    return max((run_root / model).iterdir())


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_translation", description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=TOY_PAIRS, help="pairs of the toy corpus")
    parser.add_argument("--models", default="seq2seq,attention,transformer")
    parser.add_argument("--epochs", type=int, default=None, help="override each config's max_epochs")
    parser.add_argument("--accelerator", default="auto", help="Trainer accelerator (cpu, gpu, auto)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in TOY_CONFIGS]
    if unknown:
        print(f"error: unknown model {', '.join(unknown)}; choose from {', '.join(TOY_CONFIGS)}", file=sys.stderr)
        return 2
    extra = ["--data.max_pairs", str(args.pairs), "--trainer.accelerator", args.accelerator]
    extra += ["--trainer.max_epochs", str(args.epochs)] if args.epochs else []
    with tempfile.TemporaryDirectory() as folder:
        results = {model: evaluate_run(train(model, Path(folder) / "runs", extra)) for model in models}
    buckets = list(next(iter(results.values()))["by_length"])
    print(f"\ntoy corpus: {args.pairs} pairs; test BLEU (sentences) by source length in tokens with <eos>")
    print("| model | epochs | s/epoch | " + " | ".join(f"BLEU {b}" for b in buckets) + " |")
    print("|---|---:|---:|" + "---:|" * len(buckets))
    for model, result in results.items():
        times = sorted(result["epoch_times_s"])
        cells = [f"{result['by_length'][b]['bleu']:.3f} ({result['by_length'][b]['sentences']})" for b in buckets]
        print(f"| {model} | {result['epochs']} | {times[len(times) // 2]:.1f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
