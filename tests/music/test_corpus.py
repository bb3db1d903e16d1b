"""Parsing music21 scores into pieces and a cached token corpus (three chorales)."""

from __future__ import annotations

from pathlib import Path

import pytest

from muselab.music.corpus import build_corpus, load_music_corpus, piece_from_score
from muselab.music.tokens import VOCAB, decode
from muselab.train.lm import load_corpus_file, save_corpus


def test_chorale_becomes_four_voices_with_pickup() -> None:
    from music21 import corpus

    piece = piece_from_score(corpus.parse("bach/bwv269"), "bach")
    assert piece.time_signature == (3, 4) and str(piece.key) == "G major"
    assert {n.voice for n in piece.notes} == {0, 1, 2, 3}
    first = min(n.start for n in piece.notes)
    assert first == 8  # the one-beat upbeat ends at the first bar line (3/4 = 12 ticks)


def test_build_and_cache_small_corpus(tmp_path: Path) -> None:
    c = build_corpus("bach-chorales", progress=False, limit=3)
    assert c.vocab == VOCAB.names and c.meta["pieces"] == 3
    assert len(c.pieces("train")) + len(c.pieces("val")) == 3 and len(c.pieces("val")) == 1
    for tokens in c.pieces("train"):
        assert len(decode(tokens).notes) > 50
    save_corpus(c, tmp_path / "c.tokens.npz")
    again = load_corpus_file(tmp_path / "c.tokens.npz")
    assert again.train.tolist() == c.train.tolist() and again.meta == c.meta


def test_unknown_corpus_is_a_clear_error() -> None:
    from muselab.errors import DataError

    with pytest.raises(DataError, match="unknown music corpus"):
        load_music_corpus("mozart")
