"""``litexp translate``: translate sentences with a trained seq2seq checkpoint, using its saved vocabularies.

    litexp translate --ckpt_path runs/seq2seq_attention-parallelcorpus/<version>/checkpoints/best.ckpt \
        --sentence "go ." --sentence "i lost ." [--file sentences.txt] [--beam_size 3] \
        [--length_penalty 0.75] [--max_len 20] [--attention_dir plots/]

Input sentences are normalised and tokenized as the training data was (lower case, space before
punctuation). With ``--attention_dir`` each sentence's attention weights (target tokens x source
tokens) are drawn as a heatmap PNG there (networks with attention only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch

from datamodules.translation import tokenize
from lit_models import LitexpError, Seq2SeqTask
from lit_models.decoding import EOS, Hypothesis, decode
from lit_models.tasks import words


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp translate", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of a Seq2SeqTask run")
    parser.add_argument("--sentence", action="append", default=[], help="a sentence to translate (repeatable)")
    parser.add_argument("--file", type=Path, help="a UTF-8 file with one sentence per line")
    parser.add_argument("--beam_size", type=int, default=None, help="1: greedy (default: the checkpoint's)")
    parser.add_argument("--length_penalty", type=float, default=None,
                        help="beam search ranks by log P / length ** this (default: the checkpoint's)")
    parser.add_argument("--max_len", type=int, default=None, help="longest translation in tokens "
                        "(default: the training num_steps)")
    parser.add_argument("--attention_dir", type=Path, help="write attention heatmaps (PNG) into this folder")
    return parser.parse_args(argv)


def read_sentences(args: argparse.Namespace) -> list[str]:
    sentences = list(args.sentence)
    if args.file is not None:
        if not args.file.is_file():
            raise LitexpError(f"{args.file} does not exist; give a UTF-8 file with one sentence per line")
        try:
            sentences += [line for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            raise LitexpError(f"{args.file} is not UTF-8 text ({error.reason}); give a plain text file") from error
    if not sentences:
        raise LitexpError("nothing to translate: give --sentence TEXT (repeatable) or --file FILE")
    return sentences


def check_options(args: argparse.Namespace) -> None:
    if args.beam_size is not None and args.beam_size < 1:
        raise LitexpError(f"--beam_size must be >= 1, got {args.beam_size}")
    if args.length_penalty is not None and args.length_penalty < 0:
        raise LitexpError(f"--length_penalty must be >= 0, got {args.length_penalty}")
    if args.max_len is not None and args.max_len < 1:
        raise LitexpError(f"--max_len must be >= 1, got {args.max_len}")


def plot_attention(path: Path, attention: torch.Tensor, source: list[str], target: list[str]) -> Path:
    """Heatmap of attention weights: one row per generated token (``<eos>`` included), one column per source token."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1 + 0.45 * len(source), 1 + 0.4 * len(target)))
    image = axes.imshow(attention.numpy(), cmap="Reds", vmin=0.0, aspect="auto")
    axes.set_xticks(range(len(source)), source, rotation=60, ha="right")
    axes.set_yticks(range(len(target)), target)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.colorbar(image, ax=axes, fraction=0.05)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def translate(task: Seq2SeqTask, sentences: list[str], beam_size: Optional[int] = None,
              length_penalty: Optional[float] = None,
              max_len: Optional[int] = None) -> list[tuple[list[str], list[str], Hypothesis]]:
    """(source tokens, translated words, hypothesis) per sentence."""
    source_vocab, target_vocab = task.vocab["source"]["tokens"], task.vocab["target"]["tokens"]
    ids = {token: index for index, token in enumerate(source_vocab)}
    results = []
    for sentence in sentences:
        tokens = tokenize(sentence)
        if not tokens:
            raise LitexpError(f"the sentence {sentence!r} has no tokens after normalization; give some text")
        src = torch.tensor([[ids.get(token, ids["<unk>"]) for token in tokens] + [EOS]])
        task.length_penalty = task.length_penalty if length_penalty is None else length_penalty
        task.network.eval()
        with torch.no_grad():
            hypothesis = decode(task.network, src, torch.tensor([src.shape[1]]), max_len or task.max_len,
                                beam_size or task.beam_size, task.length_penalty)[0]
        shown = [token if token in ids else f"{token} (<unk>)" for token in tokens]
        results.append((shown, words(target_vocab, hypothesis.tokens), hypothesis))
    return results


def run(argv: list[str]) -> list[str]:
    from experiments.generate import load_text_task

    args = parse(argv)
    check_options(args)
    sentences = read_sentences(args)
    task = load_text_task(str(args.ckpt_path), Seq2SeqTask)
    if not isinstance(task.vocab, dict) or "source" not in task.vocab:
        raise LitexpError(f"{args.ckpt_path} is not a checkpoint of a translation model (no source vocabulary)")
    lines = []
    for index, (source, translation, hypothesis) in enumerate(
            translate(task, sentences, args.beam_size, args.length_penalty, args.max_len)):
        line = f"{' '.join(source)} => {' '.join(translation)}"
        if args.attention_dir is not None:
            if hypothesis.attention is None:
                raise LitexpError(f"network {task.hparams['network']!r} has no attention weights to draw; "
                                  f"use seq2seq_attention or transformer, or leave out --attention_dir")
            rows = translation + (["<eos>"] if hypothesis.finished else [])
            path = plot_attention(args.attention_dir / f"attention_{index}.png", hypothesis.attention,
                                  [*source, "<eos>"], rows)
            line += f"   [attention: {path}]"
        lines.append(line)
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    try:
        for line in run(list(sys.argv[1:] if argv is None else argv)):
            print(line)
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    return 0
