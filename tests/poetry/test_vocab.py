"""The corpus pipeline and the character tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from muselab.poetry.tang import clean_title
from muselab.poetry.vocab import BOS, EOS, SEP, UNK, CharVocab, vocab_of
from muselab.train.lm import load_corpus_file


def test_corpus_keeps_both_scripts(tiny_corpus: Path) -> None:
    poems = [json.loads(s) for s in (tiny_corpus / "poems.jsonl").read_text("utf-8").splitlines()]
    assert len(poems) == 400
    assert any("長" in p["text"] and "长" in p["text_s"] for p in poems)
    regular = [p for p in poems if p["form"]]
    assert 50 < len(regular) < 400  # many Tang poems are not quatrains or regulated verse
    manifest = json.loads((tiny_corpus / "manifest.json").read_text())
    assert manifest["regular_poems"] == len(regular) and manifest["licence"] == "MIT"


def test_tokens_round_trip(tiny_corpus: Path) -> None:
    corpus = load_corpus_file(tiny_corpus / "tang.tokens.npz")
    vocab = vocab_of(corpus.meta, "fixture")
    assert corpus.vocab == tuple(vocab.tokens) and corpus.start_tokens == (vocab.id(BOS),)
    unk = vocab.id(UNK)  # characters seen once in the corpus are <unk>
    piece = next(p.tolist() for p in corpus.pieces("train") if unk not in p)
    assert piece[0] == vocab.id(BOS) and piece[-1] == vocab.id(EOS) and vocab.id(SEP) in piece
    body = piece[piece.index(vocab.id(SEP)) + 1 : -1]
    text = vocab.decode(body)
    assert vocab.encode(text) == body  # characters -> ids -> characters, exactly
    assert text.endswith("。") and len(text) in (24, 32, 48, 64)


def test_vocab_file_round_trip(tiny_corpus: Path, tmp_path: Path) -> None:
    vocab = vocab_of(load_corpus_file(tiny_corpus / "tang.tokens.npz").meta, "fixture")
    vocab.save(tmp_path / "v.json")
    back = CharVocab.load(tmp_path / "v.json")
    assert back.tokens == vocab.tokens
    assert np.array_equal(back.rhyme, vocab.rhyme) and np.array_equal(back.tone, vocab.tone)
    assert vocab.missing("春A") == ["A"] and vocab.missing("春") == []


def test_clean_title() -> None:
    assert clean_title("帝京篇十首 一") == "帝京篇"
    assert clean_title("送元二使安西（一作渭城曲）") == "送元二使安西"
