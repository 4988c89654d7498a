"""``litexp word2vec``: export trained word vectors, query the nearest words and solve analogies.

Training is ``litexp fit --config experiments/configs/text/word2vec_ptb.yaml`` (skip-gram) or
``.../glove_ptb.yaml`` (GloVe); both write ``embeddings.txt`` into the run directory. Then:

    litexp word2vec export  --ckpt_path runs/.../checkpoints/best.ckpt --out vectors.txt
    litexp word2vec nearest --embeddings runs/.../embeddings.txt --word chip [--k 10]
    litexp word2vec nearest --ckpt_path runs/.../checkpoints/best.ckpt --word chip
    litexp word2vec analogy --embeddings glove.6B.50d.txt --words man king woman   # man : king = woman : ?

``--embeddings`` reads any text vector file: one word and its numbers per line, with or without
a ``count dim`` header (word2vec, GloVe and fastText files alike).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import torch

from experiments.generate import load_text_task
from lit_models import GloVeTask, LitexpError, Word2VecTask
from lit_models.pretrained_vectors import read_vectors
from lit_models.word2vec import analogy, nearest_words, save_embeddings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp word2vec", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the embeddings of a checkpoint to a text file")
    export.add_argument("--ckpt_path", required=True)
    export.add_argument("--out", required=True, help="word2vec text file to write")
    nearest = commands.add_parser("nearest", help="the words nearest to a word by cosine similarity")
    analogies = commands.add_parser("analogy", help="a : b = c : ?, the words nearest to b - a + c")
    for command in (nearest, analogies):
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--embeddings", help="text vector file (embeddings.txt of a run, GloVe, fastText ...)")
        source.add_argument("--ckpt_path", help="checkpoint of a Word2VecTask or GloVeTask run")
        command.add_argument("--k", type=int, default=10)
    nearest.add_argument("--word", required=True)
    analogies.add_argument("--words", nargs=3, required=True, metavar=("A", "B", "C"), help="a : b = c : ?")
    return parser.parse_args(argv)


def vectors_of(ckpt_path: str) -> tuple[list[str], torch.Tensor]:
    """The vocabulary and vectors of a skip-gram or GloVe checkpoint, whichever it holds."""
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception:  # missing or unreadable: load_text_task says why in one line
        checkpoint = {}
    hyper_parameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    network = (hyper_parameters or {}).get("network")
    task = load_text_task(ckpt_path, GloVeTask if network == "glove" else Word2VecTask)
    return task.vocab["tokens"], task.network.embeddings.detach()


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "export":
            tokens, vectors = vectors_of(args.ckpt_path)
            save_embeddings(Path(args.out), tokens, vectors)
            print(f"wrote {len(tokens)} vectors of dimension {vectors.shape[1]} to {args.out}")
            return 0
        tokens, vectors = read_vectors(args.embeddings) if args.embeddings else vectors_of(args.ckpt_path)
        if args.command == "nearest":
            answers = nearest_words(tokens, vectors, args.word, args.k)
        else:
            answers = analogy(tokens, vectors, *args.words, k=args.k)
        for word, similarity in answers:
            print(f"{word}\t{similarity:.3f}")
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    return 0
