"""The toy language: a one-to-one translation with a grammar, and its TSV writer."""

from __future__ import annotations

from datamodules.toy_language import (
    LEXICON,
    make_pairs,
    parse_target,
    source_sentence,
    target_sentence,
    toy_corpus_text,
)
from datamodules.toy_language import main as toy_main


def test_every_target_sentence_parses_back_to_its_source():
    pairs = make_pairs(2000, max_clauses=3, seed=1)
    assert len({source for source, _ in pairs}) == 2000  # distinct sentences
    assert all(parse_target(target) == source for source, target in pairs)
    assert len(set(LEXICON.values())) == len(LEXICON)  # one target word per source word


def test_the_grammar_reorders_noun_phrases_and_clauses():
    clauses = [(["the", "big", "dog"], ["sees"], ["a", "cat"], "today"),
               (["no", "king"], ["helps"], ["every", "child"], None)]
    assert source_sentence(clauses, ["but"]) == "the big dog sees a cat today but no king helps every child .".split()
    # noun phrases mirrored, subject-object-verb, object particle, adverb before the verb
    expected = "hundo grod lo kazo na ka hodia vidas sed regis mu lenu sei ka helpas ."
    assert " ".join(target_sentence(clauses, ["but"])) == expected


def test_the_command_writes_the_named_corpus(tmp_path, capsys):
    assert toy_main([str(tmp_path / "toy.tsv"), "--pairs", "300"]) == 0
    assert (tmp_path / "toy.tsv").read_text(encoding="utf-8") == toy_corpus_text(300)
    assert toy_main([str(tmp_path / "bad.tsv"), "--pairs", "10", "--clause-weights", "1,2"]) == 2
    assert "--clause-weights" in capsys.readouterr().err and not (tmp_path / "bad.tsv").exists()
