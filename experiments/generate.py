"""``litexp generate``: continue a prefix with a trained language model, using its saved vocabulary.

    litexp generate --ckpt_path runs/gru_lm-textcorpus/<version>/checkpoints/best.ckpt \
        --prefix "time traveller" --num_tokens 100 [--greedy | --temperature 0.8 --top_k 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, TypeVar

import torch

from datamodules.vocab import Vocab
from lit_models import LanguageModelTask, LitexpError
from lit_models.rnn import generate
from lit_models.tasks import KeepsVocab

TextTask = TypeVar("TextTask", bound=KeepsVocab)


def load_text_task(path: str, task_class: type[TextTask]) -> TextTask:
    """The trained task in a checkpoint, with its vocabulary; loads with ``weights_only=True``."""
    if not Path(path).is_file():
        raise LitexpError(f"checkpoint {path} does not exist; give --ckpt_path runs/<name>/<version>/checkpoints/"
                          f"best.ckpt")
    try:
        task = task_class.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip, OS, argument and state-dict errors alike
        raise LitexpError(why_not_loadable(path, task_class, error)) from error
    if not task.vocab:
        raise LitexpError(f"{path} holds no vocabulary: it is not a checkpoint of a text model trained by litexp")
    return task


def why_not_loadable(path: str, task_class: type, error: Exception) -> str:
    """One line for a checkpoint that ``load_from_checkpoint`` refused: unreadable, not text, or another task."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as read_error:
        return f"cannot read checkpoint {path}: {first_line(read_error)}"
    if not isinstance(checkpoint, dict) or not checkpoint.get("vocab"):
        return f"{path} holds no vocabulary: it is not a checkpoint of a text model trained by litexp"
    return (f"{path} does not fit {task_class.__name__} ({first_line(error)}); give the best.ckpt of a "
            f"{task_class.__name__} run")


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp generate", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_path", required=True, help="checkpoint of a LanguageModelTask run")
    parser.add_argument("--prefix", default="", help="text to continue (default: the most frequent token)")
    parser.add_argument("--num_tokens", type=int, default=100, help="tokens to generate")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely token")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (> 0)")
    parser.add_argument("--top_k", type=int, default=0, help="sample among the k most likely tokens (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    return parser.parse_args(argv)


def sample(task: LanguageModelTask, prefix: str, num_tokens: int, temperature: float = 1.0, top_k: int = 0,
           greedy: bool = False, seed: int = 0) -> str:
    """``prefix`` (default: the most frequent token) followed by ``num_tokens`` tokens the model generates."""
    vocab = Vocab.from_dict(task.vocab)
    prefix_tokens = vocab.tokenizer(prefix) if prefix else [vocab.token_freqs()[0][0]]
    if not prefix_tokens:
        raise LitexpError(f"the prefix {prefix!r} has no tokens after tokenization; give some text")
    generator = torch.Generator().manual_seed(seed)
    never_seen = [index for index, freq in enumerate(vocab.freqs) if freq == 0]  # <pad>, <bos>, ...
    ids = generate(task.network, vocab.encode(prefix_tokens), num_tokens, temperature, top_k or None, greedy,
                   generator, exclude=never_seen)
    return vocab.tokenizer.join(prefix_tokens + vocab.decode(ids))


def run(argv: list[str]) -> str:
    args = parse(argv)
    if args.num_tokens < 0 or args.temperature <= 0 or args.top_k < 0:
        raise LitexpError("num_tokens and top_k must be >= 0 and temperature > 0")
    task = load_text_task(args.ckpt_path, LanguageModelTask)
    return sample(task, args.prefix, args.num_tokens, args.temperature, args.top_k, args.greedy, args.seed)


def main(argv: Optional[list[str]] = None) -> int:
    try:
        print(run(list(sys.argv[1:] if argv is None else argv)))
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    return 0
