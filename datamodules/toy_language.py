"""A reversible toy language pair with a real grammar, for translation experiments that need no download.

The source side is English-like: clauses ``subject verb object [adverb]`` joined by conjunctions,
noun phrases ``determiner adjective* noun``. The target side says the same thing in another word
order with another lexicon: noun phrases are ``noun adjective* determiner`` (adjectives mirrored),
clauses are subject-object-verb with the object marked by the particle ``ka`` and the adverb before
the verb. Each source word has exactly one target word and the target grammar is unambiguous, so
the mapping is one-to-one (``parse_target`` inverts it, and a test checks it): a perfect model
reaches BLEU 1. Longer sentences (more clauses) need longer reordering, which is where a single
context vector (plain seq2seq) falls behind attention.

    python -m datamodules.toy_language toy.tsv --pairs 5000 --max-clauses 3 --seed 0
    litexp fit --config experiments/configs/translation/toy_attention.yaml --data.path toy.tsv
    litexp fit --config experiments/configs/translation/toy_attention.yaml   # corpus: toy, generated
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Optional, Sequence

DETERMINERS = ("the", "a", "every", "no")
ADJECTIVES = ("big", "small", "red", "tall", "young", "green", "quiet", "happy")
NOUNS = ("dog", "cat", "bird", "child", "teacher", "farmer", "horse", "king", "student", "fish")
VERBS = ("sees", "likes", "follows", "helps", "finds", "calls", "knows", "meets")
ADVERBS = ("today", "often", "slowly", "again")
CONJUNCTIONS = ("and", "but", "while")
OBJECT_MARK = "ka"

_SOURCE_WORDS = (*DETERMINERS, *ADJECTIVES, *NOUNS, *VERBS, *ADVERBS, *CONJUNCTIONS)
_TARGET_WORDS = (
    "lo", "na", "sei", "mu",  # determiners
    "grod", "pim", "ruba", "vel", "tsi", "olm", "shen", "yari",  # adjectives
    "hundo", "kazo", "piri", "lenu", "dakto", "farmu", "hesto", "regis", "studo", "pesko",  # nouns
    "vidas", "amas", "sekvas", "helpas", "trovas", "vokas", "konas", "renkas",  # verbs
    "hodia", "ofta", "lante", "denove",  # adverbs
    "kaj", "sed", "dum",  # conjunctions
)
LEXICON = dict(zip(_SOURCE_WORDS, _TARGET_WORDS, strict=True))
INVERSE = {target: source for source, target in LEXICON.items()}


def noun_phrase(rng: random.Random, max_adjectives: int = 1) -> list[str]:
    adjectives = rng.sample(ADJECTIVES, rng.randint(0, max_adjectives))
    return [rng.choice(DETERMINERS), *adjectives, rng.choice(NOUNS)]


def clause(rng: random.Random) -> tuple[list[str], list[str], list[str], Optional[str]]:
    """(subject, verb, object, adverb or None) of one clause."""
    adverb = rng.choice(ADVERBS) if rng.random() < 0.5 else None
    return noun_phrase(rng), [rng.choice(VERBS)], noun_phrase(rng), adverb


def source_sentence(clauses: Sequence, conjunctions: Sequence[str]) -> list[str]:
    words: list[str] = []
    for index, (subject, verb, obj, adverb) in enumerate(clauses):
        if index:
            words.append(conjunctions[index - 1])
        words += [*subject, *verb, *obj] + ([adverb] if adverb else [])
    return words + ["."]


def target_phrase(phrase: list[str]) -> list[str]:
    """``det adj1 adj2 noun`` -> ``noun' adj2' adj1' det'``."""
    return [LEXICON[word] for word in reversed(phrase)]


def target_sentence(clauses: Sequence, conjunctions: Sequence[str]) -> list[str]:
    words: list[str] = []
    for index, (subject, verb, obj, adverb) in enumerate(clauses):
        if index:
            words.append(LEXICON[conjunctions[index - 1]])
        words += target_phrase(subject) + target_phrase(obj) + [OBJECT_MARK]
        words += ([LEXICON[adverb]] if adverb else []) + [LEXICON[verb[0]]]
    return words + ["."]


def sentence_pair(rng: random.Random, clauses: int) -> tuple[str, str]:
    parts = [clause(rng) for _ in range(clauses)]
    conjunctions = [rng.choice(CONJUNCTIONS) for _ in range(clauses - 1)]
    return " ".join(source_sentence(parts, conjunctions)), " ".join(target_sentence(parts, conjunctions))


def parse_target(sentence: str) -> str:
    """Invert the translation: a target sentence back to its source sentence (proves the map one-to-one)."""
    words = sentence.split()
    if not words or words[-1] != ".":
        raise ValueError(f"not a target sentence: {sentence!r}")
    conjunctions = {LEXICON[c] for c in CONJUNCTIONS}
    clauses, current = [], []
    for word in words[:-1]:
        if word in conjunctions:
            clauses.append(current)
            clauses.append([word])
            current = []
        else:
            current.append(word)
    clauses.append(current)
    source: list[str] = []
    for part in clauses:
        if len(part) == 1 and part[0] in conjunctions:
            source.append(INVERSE[part[0]])
            continue
        mark = part.index(OBJECT_MARK)
        noun_phrases, rest = part[:mark], part[mark + 1:]
        nouns = [i for i, word in enumerate(noun_phrases) if INVERSE.get(word) in NOUNS]
        subject, obj = noun_phrases[: nouns[1]], noun_phrases[nouns[1]:]
        verb, adverb = rest[-1], rest[:-1]
        source += [INVERSE[w] for w in reversed(subject)] + [INVERSE[verb]]
        source += [INVERSE[w] for w in reversed(obj)] + [INVERSE[w] for w in adverb]
    return " ".join(source + ["."])


def make_pairs(num_pairs: int, max_clauses: int = 3, seed: int = 0,
               clause_weights: Optional[Sequence[float]] = None) -> list[tuple[str, str]]:
    """``num_pairs`` distinct sentence pairs; the number of clauses is drawn by ``clause_weights``."""
    rng = random.Random(seed)
    weights = list(clause_weights or [1.0] * max_clauses)
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    attempts = 0
    while len(pairs) < num_pairs:
        attempts += 1
        if attempts > 50 * num_pairs:
            raise ValueError(f"cannot draw {num_pairs} distinct sentences; allow more clauses")
        source, target = sentence_pair(rng, rng.choices(range(1, max_clauses + 1), weights)[0])
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return pairs


#: clause counts 1, 2, 3 drawn with these weights: mostly short sentences and a tail of long ones
CLAUSE_WEIGHTS = (0.6, 0.3, 0.1)


def toy_corpus_text(num_pairs: int = 10000, seed: int = 0) -> str:
    """The named corpus ``toy`` of :class:`datamodules.ParallelCorpus`: TSV text, generated, no download."""
    return "".join(f"{source}\t{target}\n" for source, target in make_pairs(num_pairs, 3, seed, CLAUSE_WEIGHTS))


def write_tsv(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(f"{source}\t{target}\n" for source, target in pairs), encoding="utf-8")
    partial.replace(path)
    return path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datamodules.toy_language", description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path, help="TSV file to write (source TAB target per line)")
    parser.add_argument("--pairs", type=int, default=5000, help="number of distinct sentence pairs")
    parser.add_argument("--max-clauses", type=int, default=3, help="clauses per sentence: 1 to this")
    parser.add_argument("--clause-weights", default=None,
                        help="relative frequency of 1, 2, ... clauses, comma-separated (default: 0.6,0.3,0.1 for 3 "
                             "clauses, as the named corpus toy; else equal)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    weights = [float(w) for w in args.clause_weights.split(",")] if args.clause_weights else None
    if weights is None and args.max_clauses == len(CLAUSE_WEIGHTS):
        weights = list(CLAUSE_WEIGHTS)
    if args.pairs < 1 or args.max_clauses < 1 or (weights and (len(weights) != args.max_clauses or min(weights) < 0)):
        print("error: --pairs and --max-clauses must be >= 1, --clause-weights one weight >= 0 per clause count",
              file=sys.stderr)
        return 2
    path = write_tsv(args.output, make_pairs(args.pairs, args.max_clauses, args.seed, weights))
    print(f"wrote {args.pairs} pairs to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
