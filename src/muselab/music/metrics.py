"""Objective music metrics of a piece, and summaries over a set of pieces.

* ``pitch_class_entropy``: Shannon entropy (bits) of the pitch-class histogram of the
  notes (Wu & Yang 2020; MusPy, Dong et al. 2020);
* ``scale_consistency``: the largest share of notes inside one diatonic (major / natural
  minor) scale (Mogren 2016, "C-RNN-GAN");
* ``key_correlation``: correlation of the duration-weighted pitch-class distribution with
  the best Krumhansl-Schmuckler key profile (Krumhansl 1990), computed by music21's
  ``analysis.discrete.KrumhanslSchmuckler``;
* ``empty_bar_rate``: share of bars in which nothing sounds (Dong et al. 2018, MuseGAN);
* ``repetition``: share of non-empty bars that repeat an earlier bar of the piece exactly
  (same onsets, pitches and durations);
* ``polyphony``: mean number of pitches sounding on ticks where any sounds (MusPy);
* ``note_density``: notes per bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from muselab.music.tokens import TPQ, Key, Note, Piece

METRICS = ("pitch_class_entropy", "scale_consistency", "key_correlation", "empty_bar_rate",
           "repetition", "polyphony", "note_density")
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def piece_metrics(piece: Piece) -> dict[str, float]:
    """All :data:`METRICS` of one piece (a piece without notes has no metrics: ValueError)."""
    if not piece.notes:
        raise ValueError("a piece without notes has no metrics")
    pitches = np.array([n.pitch for n in piece.notes])
    durations = np.array([n.duration for n in piece.notes], dtype=float)
    return {
        "pitch_class_entropy": pitch_class_entropy(pitches),
        "scale_consistency": scale_consistency(pitches),
        "key_correlation": key_correlation(pitches, durations),
        "empty_bar_rate": empty_bar_rate(piece),
        "repetition": repetition(piece),
        "polyphony": polyphony(piece.notes),
        "note_density": len(piece.notes) / max(1, piece.bars()),
    }


def pitch_class_entropy(pitches: np.ndarray) -> float:
    hist = np.bincount(pitches % 12, minlength=12).astype(float)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(pitches: np.ndarray) -> float:
    pcs = pitches % 12
    return max(float(np.isin(pcs, (_MAJOR + t) % 12).mean()) for t in range(12))


def _ks_solution(pitches: Sequence[int] | np.ndarray,
                 durations: Sequence[float] | np.ndarray) -> object:
    from music21 import note, stream
    from music21.analysis.discrete import KrumhanslSchmuckler

    s: Any = stream.Stream()
    for p, d in zip(pitches, durations, strict=True):
        s.append(note.Note(int(p), quarterLength=max(float(d), 1e-3) / TPQ))
    return KrumhanslSchmuckler().getSolution(s)


def key_correlation(pitches: np.ndarray, durations: np.ndarray) -> float:
    """Correlation coefficient of the best Krumhansl-Schmuckler key (music21)."""
    return float(_ks_solution(pitches, durations).correlationCoefficient)  # type: ignore[attr-defined]


def estimate_key(pitches: Sequence[int], durations: Sequence[float]) -> Key:
    """The Krumhansl-Schmuckler key (music21) of notes given as pitches and durations."""
    k = _ks_solution(pitches, durations)
    return Key(int(k.tonic.pitchClass), k.mode == "minor")  # type: ignore[attr-defined]


def _bar_contents(piece: Piece) -> list[tuple[tuple[int, int, int], ...]]:
    bt, n_bars = piece.bar_ticks, piece.bars()
    bars: list[list[tuple[int, int, int]]] = [[] for _ in range(n_bars)]
    for n in piece.notes:
        bars[n.start // bt].append((n.start % bt, n.pitch, n.duration))
    return [tuple(sorted(b)) for b in bars]


def empty_bar_rate(piece: Piece) -> float:
    bt, n_bars = piece.bar_ticks, piece.bars()
    sounding = np.zeros(n_bars, dtype=bool)
    for n in piece.notes:
        first, last = n.start // bt, min(n_bars - 1, (n.start + n.duration - 1) // bt)
        sounding[first : last + 1] = True
    return float(1.0 - sounding.mean())


def repetition(piece: Piece) -> float:
    seen: set[tuple[tuple[int, int, int], ...]] = set()
    repeats = total = 0
    for bar in _bar_contents(piece):
        if not bar:
            continue
        total += 1
        repeats += bar in seen
        seen.add(bar)
    return repeats / total if total else 0.0


def polyphony(notes: Sequence[Note]) -> float:
    end = max(n.start + n.duration for n in notes)
    count = np.zeros(end, dtype=np.int64)
    for n in notes:
        count[n.start : n.start + n.duration] += 1
    active = count[count > 0]
    return float(active.mean()) if len(active) else 0.0


def summarize(rows: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, std, min, 10th and 90th percentile and max of each metric over pieces."""
    out: dict[str, dict[str, float]] = {}
    for name in METRICS:
        values = np.array([r[name] for r in rows if not math.isnan(r[name])])
        if not len(values):
            continue
        out[name] = {"mean": float(values.mean()), "std": float(values.std()),
                     "min": float(values.min()), "p10": float(np.percentile(values, 10)),
                     "p90": float(np.percentile(values, 90)), "max": float(values.max()),
                     "n": float(len(values))}
    return out


def random_piece(reference: Piece, rng: np.random.Generator) -> Piece:
    """Random notes with the voices, pitch ranges, bar count and metre of ``reference``.

    Each voice is a chain of notes with durations drawn from the durations of that voice
    in the reference and pitches uniform over its range: the "random notes" baseline.
    """
    total = reference.bars() * reference.bar_ticks
    notes: list[Note] = []
    for voice in sorted({n.voice for n in reference.notes}):
        own = [n for n in reference.notes if n.voice == voice]
        lo, hi = min(n.pitch for n in own), max(n.pitch for n in own)
        durs = [n.duration for n in own]
        t = 0
        while t < total:
            d = int(rng.choice(durs))
            notes.append(Note(t, d, int(rng.integers(lo, hi + 1)), voice))
            t += d
    return Piece(notes=notes, key=reference.key, time_signature=reference.time_signature,
                 tempo=reference.tempo, style=reference.style, n_bars=reference.bars())
