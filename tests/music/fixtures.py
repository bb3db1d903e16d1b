"""Small real music for the tests: three excerpts (two Bach chorales, one Essen folk song)
written as MIDI from the music21 corpus into tests/fixtures/music/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from muselab.train.lm import TokenCorpus, pack, save_corpus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "music"
CHORALES = (FIXTURES / "bwv269.mid", FIXTURES / "bwv347.mid")
FOLK = FIXTURES / "kinder0-1.mid"


def fixture_corpus(path: Path) -> Path:
    """A ``.tokens.npz`` corpus of the fixture pieces (train: all three; held out: the second)."""
    from muselab.music.midi import read_midi
    from muselab.music.tokens import BAR, BOS, VOCAB, encode

    pieces = [np.array(encode(read_midi(p, style="bach"))) for p in CHORALES]
    pieces.append(np.array(encode(read_midi(FOLK, style="folk"))))
    train, train_off = pack(pieces)
    val, val_off = pack(pieces[1:2])
    corpus = TokenCorpus("fixture", VOCAB.names, train, train_off, val, val_off,
                         start_tokens=(BOS, BAR), transform="music-transpose",
                         meta={"source": "tests/fixtures/music"})
    save_corpus(corpus, path)
    return path
