"""Music corpora from the music21 corpus, parsed once (with a progress bar) and cached.

* ``bach-chorales``: the 371 four-part chorales of J. S. Bach in Riemenschneider
  numbering (``music21.corpus.chorales.Iterator``), voices soprano-alto-tenor-bass.
* ``essen-folk``: the Essen folk-song collection (Schaffrath; ABC encodings by Seymour
  Shlien), about 8,500 monophonic tunes in ``music21/corpus/essenFolksong``.

Pieces with a changing, missing or unsupported time signature, or notes outside the
tokenizer range, are skipped and counted. Every tenth piece of a fixed seeded
permutation is held out (the ``val`` split, used for the held-out loss and as the
"real" reference of the metrics). The tokens go to
``<data home>/music/<name>-v<version>.tokens.npz``; music21 is needed only to build it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.io import data_home
from muselab.music.tokens import (
    BAR,
    BOS,
    N_VOICES,
    PITCH_HI,
    PITCH_LO,
    TIME_SIGS,
    TPQ,
    VOCAB,
    Key,
    Note,
    Piece,
    bar_ticks,
    encode,
)
from muselab.train.lm import TokenCorpus, load_corpus_file, pack, save_corpus

log = logging.getLogger("muselab.music")

TOKENIZER_VERSION = 1
MUSIC21_VERSION = "9.9.1"
VAL_EVERY = 10  # one piece in ten is held out
DEFAULT_TEMPO = {"bach": 80.0, "folk": 100.0}
CORPORA = {
    "bach-chorales": {
        "style": "bach",
        "source": f"music21=={MUSIC21_VERSION} corpus: 371 Bach chorales (Riemenschneider)",
        "licence": "music21 corpus (BSD-3 software; encodings distributed with permission, "
                   "Bach's music is public domain)",
    },
    "essen-folk": {
        "style": "folk",
        "source": f"music21=={MUSIC21_VERSION} corpus: essenFolksong (Essen Folksong "
                  "Collection, ABC by Seymour Shlien)",
        "licence": "non-commercial distribution and use permitted by Ewa Dahlig-Turek "
                   "(music21/corpus/essenFolksong/license.txt); legal status unclear",
    },
}


class SkipPiece(Exception):
    """A score that cannot be tokenised (the reason is the message)."""


def corpus_path(name: str) -> Path:
    return data_home() / "music" / f"{name}-v{TOKENIZER_VERSION}.tokens.npz"


def load_music_corpus(name: str, progress: bool = True) -> TokenCorpus:
    """The cached corpus ``name``, parsing it from music21 on first use."""
    if name not in CORPORA:
        raise DataError(f"unknown music corpus {name!r} (choices: {', '.join(CORPORA)})")
    path = corpus_path(name)
    if path.is_file():
        return load_corpus_file(path)
    corpus = build_corpus(name, progress=progress)
    save_corpus(corpus, path)
    log.info("cached %s (%d train / %d held-out tokens) at %s", name, len(corpus.train),
             len(corpus.val), path)
    return corpus


def build_corpus(name: str, progress: bool = True, limit: int | None = None) -> TokenCorpus:
    """Parse and tokenise corpus ``name`` (``limit``: only the first N scores, for tests)."""
    spec = CORPORA[name]
    style = str(spec["style"])
    scores = _chorales() if name == "bach-chorales" else _essen()
    pieces: list[tuple[str, list[int]]] = []
    skipped: dict[str, int] = {}
    for ident, score in _with_progress(scores, f"parsing {name}", progress, limit):
        try:
            pieces.append((ident, encode(piece_from_score(score, style))))
        except SkipPiece as skip:
            skipped[str(skip)] = skipped.get(str(skip), 0) + 1
        except Exception as exc:  # music21 raises many kinds on odd encodings: skip, count
            reason = f"music21 error: {type(exc).__name__}"
            skipped[reason] = skipped.get(reason, 0) + 1
    if not pieces:
        raise DataError(f"corpus {name}: no piece could be tokenised ({skipped})")
    perm = np.random.default_rng(0).permutation(len(pieces))
    val_idx = set(perm[:: VAL_EVERY].tolist())
    train = [np.array(t) for i, (_, t) in enumerate(pieces) if i not in val_idx]
    val = [np.array(t) for i, (_, t) in enumerate(pieces) if i in val_idx]
    (train_tokens, train_off), (val_tokens, val_off) = pack(train), pack(val)
    meta: dict[str, Any] = {
        **spec, "tokenizer": f"muselab.music.tokens v{TOKENIZER_VERSION}",
        "pieces": len(pieces), "skipped": skipped,
        "val_pieces": [pieces[i][0] for i in sorted(val_idx)]}
    return TokenCorpus(name=name, vocab=VOCAB.names, train=train_tokens, train_offsets=train_off,
                       val=val_tokens, val_offsets=val_off, start_tokens=(BOS, BAR),
                       transform="music-transpose", meta=meta)


def _with_progress(items: Iterator[tuple[str, Any]] | tuple[int, Iterator[tuple[str, Any]]],
                   what: str, progress: bool, limit: int | None) -> Iterator[tuple[str, Any]]:
    from rich.progress import Progress

    total, it = items if isinstance(items, tuple) else (None, items)
    if limit is not None:
        total = min(total or limit, limit)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(what, total=total)
        for i, item in enumerate(it):
            if limit is not None and i >= limit:
                break
            yield item
            bar.advance(task)


def _chorales() -> tuple[int, Iterator[tuple[str, Any]]]:
    from music21 import corpus

    names = list(corpus.chorales.Iterator(numberingSystem="riemenschneider",
                                          returnType="filename"))
    return len(names), ((n, corpus.parse(n)) for n in names)


def _essen() -> tuple[int, Iterator[tuple[str, Any]]]:
    from music21 import corpus

    folder = Path(corpus.__file__).parent / "essenFolksong"
    files = sorted(p for p in folder.glob("*.abc") if not p.name.startswith("test"))
    total = sum(p.read_text(errors="replace").count("\nX:") + 1 for p in files)

    def scores() -> Iterator[tuple[str, Any]]:
        for path in files:
            try:
                opus = corpus.parse(f"essenFolksong/{path.name}")
            except Exception as exc:  # a file music21 cannot read: say so, go on
                log.warning("skipping %s: %s", path.name, exc)
                continue
            for i, score in enumerate(getattr(opus, "scores", [opus])):
                yield f"{path.stem}/{i}", score

    return total, scores()


def piece_from_score(score: Any, style: str) -> Piece:
    """A music21 score -> :class:`Piece` (raises :class:`SkipPiece` with the reason)."""
    from music21 import meter

    parts = list(score.parts) or [score]
    if style == "bach" and len(parts) != N_VOICES:
        raise SkipPiece(f"{len(parts)} parts")
    sigs = {(ts.numerator, ts.denominator)
            for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if len(sigs) != 1:
        raise SkipPiece("missing or changing time signature")
    ts = sigs.pop()
    if ts not in TIME_SIGS:
        raise SkipPiece(f"time signature {ts[0]}/{ts[1]}")
    shift = _pickup_shift(parts[0], ts)
    notes = [n for v, part in enumerate(parts[:N_VOICES]) for n in _part_notes(part, v, shift)]
    if not notes:
        raise SkipPiece("no notes")
    k = score.analyze("key")
    return Piece(notes=notes, key=Key(k.tonic.pitchClass, k.mode == "minor"), time_signature=ts,
                 tempo=DEFAULT_TEMPO.get(style, 90.0), style=style)


def _pickup_shift(part: Any, ts: tuple[int, int]) -> float:
    """Quarter lengths to delay everything so that an anacrusis ends at the first bar line."""
    measures = part.getElementsByClass("Measure")
    if not measures:
        return 0.0
    bar_ql = bar_ticks(ts) / TPQ
    first = float(measures[0].duration.quarterLength)
    return bar_ql - first if 0 < first < bar_ql else 0.0


def _part_notes(part: Any, voice: int, shift: float) -> Iterator[Note]:
    for n in part.stripTies().flatten().notes:
        ql = float(n.quarterLength)
        if ql <= 0:  # grace notes
            continue
        start = round((float(n.offset) + shift) * TPQ)
        for p in n.pitches:
            if not PITCH_LO <= p.midi <= PITCH_HI:
                raise SkipPiece("pitch out of range")
            yield Note(start, max(1, round(ql * TPQ)), int(p.midi), voice)


def corpus_loader(name: str) -> Callable[[], TokenCorpus]:
    """A loader for :func:`muselab.train.lm.register_corpus`."""
    return lambda: load_music_corpus(name)
