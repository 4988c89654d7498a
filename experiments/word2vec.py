"""``litexp word2vec``: export trained word vectors and query the nearest words.

Training is ``litexp fit --config experiments/configs/text/word2vec_ptb.yaml`` (it writes
``embeddings.txt`` into the run directory). Then:

    litexp word2vec export  --ckpt_path runs/.../checkpoints/best.ckpt --out vectors.txt
    litexp word2vec nearest --embeddings runs/.../embeddings.txt --word chip [--k 10]
    litexp word2vec nearest --ckpt_path runs/.../checkpoints/best.ckpt --word chip
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from experiments.generate import load_text_task
from lit_models import LitexpError, Word2VecTask
from lit_models.word2vec import load_embeddings, nearest_words, save_embeddings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp word2vec", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the embeddings of a checkpoint to a text file")
    export.add_argument("--ckpt_path", required=True)
    export.add_argument("--out", required=True, help="word2vec text file to write")
    nearest = commands.add_parser("nearest", help="the words nearest to a word by cosine similarity")
    source = nearest.add_mutually_exclusive_group(required=True)
    source.add_argument("--embeddings", help="word2vec text file (embeddings.txt of a run)")
    source.add_argument("--ckpt_path", help="checkpoint of a Word2VecTask run")
    nearest.add_argument("--word", required=True)
    nearest.add_argument("--k", type=int, default=10)
    return parser.parse_args(argv)


def vectors_of(ckpt_path: str):
    task = load_text_task(ckpt_path, Word2VecTask)
    return task.vocab["tokens"], task.network.embeddings.detach()


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "export":
            tokens, vectors = vectors_of(args.ckpt_path)
            save_embeddings(Path(args.out), tokens, vectors)
            print(f"wrote {len(tokens)} vectors of dimension {vectors.shape[1]} to {args.out}")
            return 0
        tokens, vectors = load_embeddings(args.embeddings) if args.embeddings else vectors_of(args.ckpt_path)
        for word, similarity in nearest_words(tokens, vectors, args.word, args.k):
            print(f"{word}\t{similarity:.3f}")
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    return 0
