"""Music metrics on real excerpts, random notes and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from muselab.music.evaluate import compare
from muselab.music.metrics import METRICS, piece_metrics, random_piece, summarize
from muselab.music.midi import read_midi
from muselab.music.tokens import Key, Note, Piece
from tests.music.fixtures import CHORALES


def test_hand_made_values() -> None:
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [Note(4 * i, 4, p) for i, p in enumerate(scale)]  # C major scale, 2 bars
    notes += notes[:4]  # nothing new, but bar 3 repeats bar 1 when shifted
    notes[-4:] = [Note(32 + n.start, n.duration, n.pitch) for n in notes[:4]]
    piece = Piece(notes, Key(0), (4, 4), n_bars=4)
    m = piece_metrics(piece)
    assert m["scale_consistency"] == 1.0
    assert m["empty_bar_rate"] == 0.25
    assert m["repetition"] == pytest.approx(1 / 3)
    assert m["polyphony"] == 1.0
    assert m["note_density"] == 3.0
    assert m["pitch_class_entropy"] == pytest.approx(
        -sum(p * np.log2(p) for p in np.bincount([n.pitch % 12 for n in notes])[
            np.bincount([n.pitch % 12 for n in notes]) > 0] / len(notes)))
    assert m["key_correlation"] > 0.7


def test_real_music_scores_better_than_random_notes() -> None:
    real = [read_midi(p) for p in CHORALES]
    rng = np.random.default_rng(0)
    for piece in real:
        r, f = piece_metrics(piece), piece_metrics(random_piece(piece, rng))
        assert r["scale_consistency"] > f["scale_consistency"]
        assert r["key_correlation"] > f["key_correlation"]
        assert r["pitch_class_entropy"] < f["pitch_class_entropy"]
        assert 3.0 < r["polyphony"] <= 4.0


def test_compare_reports_every_metric() -> None:
    real = [read_midi(p) for p in CHORALES]
    report = compare(real[:1], real, seed=0)
    assert report["n"] == {"generated": 1, "real": 2, "random": 2}
    assert set(report["summary"]["generated"]) == set(METRICS)
    assert set(report["inside_real"]) == set(METRICS)
    s = summarize(report["per_piece"])
    assert s["note_density"]["n"] == 1
