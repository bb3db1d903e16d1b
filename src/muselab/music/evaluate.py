"""``muselab eval music``: metrics of generated MIDI files next to two references.

The references are the held-out pieces of a corpus (what real music scores) and, for
each of them, random notes with the same voices, ranges, rhythms values and length
(what no musical knowledge scores). A generated set is "inside" the real range for a
metric when its mean lies between the 10th and 90th percentile of the held-out pieces
(``inside_real``) or between their minimum and maximum (``inside_real_range``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.music.metrics import piece_metrics, random_piece, summarize
from muselab.music.tokens import Piece, decode


def reference_pieces(corpus: str) -> list[Piece]:
    """The held-out pieces of ``corpus`` (parsed and cached on first use)."""
    from muselab.music.corpus import load_music_corpus

    return [decode(p) for p in load_music_corpus(corpus).pieces("val")]


def read_folder(folder: Path, style: str = "other") -> list[Piece]:
    """Every ``*.mid`` file in ``folder`` (a :class:`DataError` if there is none)."""
    from muselab.music.midi import read_midi

    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder of MIDI files")
    files = sorted([*folder.glob("*.mid"), *folder.glob("*.midi")])
    if not files:
        raise DataError(f"{folder} holds no .mid files")
    return [read_midi(f, style=style) for f in files]


def compare(generated: list[Piece], real: list[Piece], seed: int = 0) -> dict[str, Any]:
    """Per-set summaries of every metric, and whether the generated means are inside the
    held-out 10th-90th percentile range."""
    rng = np.random.default_rng(seed)
    rows = {"generated": [piece_metrics(p) for p in generated if p.notes],
            "real": [piece_metrics(p) for p in real if p.notes],
            "random": [piece_metrics(random_piece(p, rng)) for p in real if p.notes]}
    summary = {name: summarize(r) for name, r in rows.items()}
    ref = summary["real"]
    common = [m for m in summary["generated"] if m in ref]
    mean = {m: summary["generated"][m]["mean"] for m in common}
    return {"n": {k: len(v) for k, v in rows.items()}, "summary": summary,
            "inside_real": {m: bool(ref[m]["p10"] <= mean[m] <= ref[m]["p90"])
                            for m in common},
            "inside_real_range": {m: bool(ref[m]["min"] <= mean[m] <= ref[m]["max"])
                                  for m in common},
            "per_piece": rows["generated"]}


def evaluate_folder(folder: Path, reference: str = "bach-chorales",
                    seed: int = 0) -> dict[str, Any]:
    """Metrics of the MIDI files in ``folder`` against ``reference``'s held-out pieces."""
    generated = read_folder(folder)
    report = compare(generated, reference_pieces(reference), seed)
    return {"folder": str(folder), "reference": reference, "seed": seed, **report}
