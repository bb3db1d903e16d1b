"""Compose, continue and harmonise with a trained music language model.

Generation is constrained by the token grammar of :mod:`muselab.music.grammar` (passed
as the Transformer's ``logits_mask``, and as its speculative ``draft`` for one piece).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from muselab.errors import ConfigError, MuselabError
from muselab.models.transformer import Transformer
from muselab.music.grammar import GrammarMask, closing_chord
from muselab.music.tokens import (
    BAR,
    EOS,
    MAX_DUR,
    N_VOICES,
    STYLES,
    VOCAB,
    Key,
    Note,
    Piece,
    decode,
    encode,
    header,
)

C_MAJOR = Key(0)


@dataclass
class Sampling:
    """How to draw tokens (Holtzman et al. 2020 nucleus sampling by default)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = 0.95
    repetition_penalty: float = 1.0


class Composer:
    """A trained music language model with composition, continuation and harmonisation."""

    def __init__(self, model: Transformer, config: dict[str, Any], source: str,
                 threads: int = 1) -> None:
        self.model = model.eval()
        self.config, self.source = config, source
        self.threads = threads  # CPU threads while generating (one step is tiny: 1 is fastest)

    @classmethod
    def load(cls, spec: str | None = None, device: str = "cpu") -> Composer:
        """A shipped model name (default ``bach-chorale``), a run, a folder or a file."""
        from muselab.train.lm import LMTask
        from muselab.train.run import load_task

        path = resolve_music_model(spec)
        task, config = load_task(path, device)
        if not isinstance(task, LMTask) or task.cfg.net.vocab_size != len(VOCAB):
            raise MuselabError(f"--model {spec!r}: {path} is not a music model "
                               "(train one with recipes/bach-chorale.sh)")
        return cls(task.model, config, str(path))

    @property
    def block_size(self) -> int:
        return self.model.cfg.block_size

    def _generate(self, prompts: Tensor, mask: GrammarMask, max_new: int, seed: int,
                  sampling: Sampling) -> list[Piece]:
        g = torch.Generator().manual_seed(seed)
        with _torch_threads(self.threads):
            out = self.model.generate(
                prompts, max_new, temperature=sampling.temperature, top_k=sampling.top_k,
                top_p=sampling.top_p, repetition_penalty=sampling.repetition_penalty,
                logits_mask=mask, stop_token=EOS, generator=g,
                draft=mask.draft if len(prompts) == 1 else None)  # [B, T0 + n]
        return [monophonic(decode(row)) for row in out.tolist()]

    def compose(self, *, style: str = "bach", bars: int = 16, key: Key = C_MAJOR,
                time_signature: tuple[int, int] = (4, 4), tempo: float = 90.0, n: int = 1,
                seed: int = 0, sampling: Sampling | None = None,
                cadence: bool = True) -> list[Piece]:
        """``n`` new pieces of ``bars`` bars with the given header (one batch); with
        ``cadence`` the last bar is the key's tonic chord, held (:class:`GrammarMask`)."""
        _check(style, bars, n)
        head = header(Piece([], key, time_signature, tempo, style))
        prompts = torch.tensor([head] * n)  # [n, 6]
        voices = (0,) if style == "folk" else tuple(range(N_VOICES))
        mask = GrammarMask(bars, _bar_ticks(time_signature), voices,
                           final_chord=closing_chord(key) if cadence else ())
        pieces = self._generate(prompts, mask, _budget(bars), seed, sampling or Sampling())
        return [replace(p, tempo=tempo, n_bars=bars) for p in pieces]

    def continue_piece(self, start: Piece, *, bars: int = 8, seed: int = 0,
                       sampling: Sampling | None = None, cadence: bool = True) -> Piece:
        """``start`` followed by ``bars`` new bars (``cadence``: see :meth:`compose`)."""
        _check(start.style, bars, 1)
        if start.style == "folk":  # a monophonic model: keep the top voice
            start = replace(start, notes=[n for n in start.notes if n.voice == 0])
        prompt = [*encode(start, eos=False), BAR]  # the new music starts on a new bar
        total = start.bars() + bars
        voices = (0,) if start.style == "folk" else tuple(range(N_VOICES))
        mask = GrammarMask(total, start.bar_ticks, voices,
                           final_chord=closing_chord(start.key) if cadence else ())
        piece = self._generate(torch.tensor([prompt]), mask, _budget(bars), seed,
                               sampling or Sampling())[0]
        return replace(piece, tempo=start.tempo, n_bars=total)

    def harmonize(self, melody: Piece, *, seed: int = 0, sampling: Sampling | None = None,
                  cadence: bool = True) -> Piece:
        """Alto, tenor and bass under the soprano line ``melody`` (its top voice); with
        ``cadence``, and a last melody note in the tonic triad, they close on that chord."""
        line = soprano_line(melody)
        bt = melody.bar_ticks
        forced = {(n.start // bt, n.start % bt): (n.pitch, n.duration) for n in line}
        total = max(n.start + n.duration - 1 for n in line) // bt + 1
        head = header(Piece([], melody.key, melody.time_signature, melody.tempo, "bach"))
        chord = closing_chord(melody.key)
        close = cadence and line[-1].pitch % 12 in chord
        mask = GrammarMask(total, bt, tuple(range(N_VOICES)), forced,
                           final_chord=chord if close else ())
        piece = self._generate(torch.tensor([head]), mask, _budget(total) + 3 * len(line),
                               seed, sampling or Sampling())[0]
        return replace(piece, tempo=melody.tempo, n_bars=total)


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads (0: leave as is), then restore."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def monophonic(piece: Piece) -> Piece:
    """Each voice as a line: a note ends no later than the next onset of its voice (what
    a singer does, and what MIDI needs: overlapping equal pitches would cut each other)."""
    notes: list[Note] = []
    for voice in sorted({n.voice for n in piece.notes}):
        line = [n for n in piece.notes if n.voice == voice]
        onsets = sorted({n.start for n in line})
        after = dict(zip(onsets, [*onsets[1:], None], strict=True))  # next onset (chords kept)
        for a in line:
            nxt = after[a.start]
            end = a.start + a.duration if nxt is None else min(a.start + a.duration, nxt)
            notes.append(replace(a, duration=end - a.start))
    return replace(piece, notes=sorted(notes, key=lambda n: (n.start, n.voice, -n.pitch)))


def soprano_line(piece: Piece) -> list[Note]:
    """The top voice of ``piece`` as a monophonic line (highest note per onset, no overlap)."""
    top = min(n.voice for n in piece.notes)
    onsets: dict[int, Note] = {}
    for n in piece.notes:
        if n.voice == top and (n.start not in onsets or n.pitch > onsets[n.start].pitch):
            onsets[n.start] = n
    line = [onsets[s] for s in sorted(onsets)]
    out = []
    for a, b in zip(line, [*line[1:], None], strict=True):
        dur = a.duration if b is None else max(1, min(a.duration, b.start - a.start))
        out.append(Note(a.start, min(dur, MAX_DUR), a.pitch, 0, a.velocity))
    return out


def resolve_music_model(spec: str | None) -> Path:
    """The ``model.safetensors`` named by ``spec`` (shipped name, file, folder or run)."""
    from muselab.models.zoo import find_pretrained, verify
    from muselab.train.checkpoint import MODEL_FILE
    from muselab.train.rundir import find_run, runs_root

    name = spec or "bach-chorale"
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir() and (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    try:
        entry = find_pretrained(name)
    except MuselabError:
        try:
            run = find_run(name, runs_root())
        except MuselabError:
            raise MuselabError(f"--model {name!r}: no shipped model, model file or run of that "
                               "name (train one with recipes/bach-chorale.sh)") from None
        if not (run / MODEL_FILE).is_file():
            raise MuselabError(f"--model {name!r}: run {run} has no {MODEL_FILE} yet") from None
        return run / MODEL_FILE
    verify(entry)
    return entry.weights


def _bar_ticks(ts: tuple[int, int]) -> int:
    return Piece([], time_signature=ts).bar_ticks


def _budget(bars: int) -> int:
    """Token budget: generous for four dense voices (chorales use about 40 tokens a bar)."""
    return 160 * bars + 8


def _check(style: str, bars: int, n: int) -> None:
    if style not in STYLES[:2]:
        raise ConfigError(f"--style {style!r} is not one of: bach, folk")
    if not 1 <= bars <= 256:
        raise ConfigError(f"--bars {bars} is out of range [1, 256]")
    if not 1 <= n <= 1024:
        raise ConfigError(f"--n {n} is out of range [1, 1024]")


def parse_meter(text: str) -> tuple[int, int]:
    """``"3/4"`` -> (3, 4); a :class:`ConfigError` for anything the tokenizer cannot hold."""
    from muselab.music.tokens import TIME_SIGS

    try:
        a, b = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--meter {text!r} is not a time signature like 4/4") from None
    if (a, b) not in TIME_SIGS:
        raise ConfigError(f"--meter {text}: not supported (supported: "
                          f"{', '.join(f'{x}/{y}' for x, y in TIME_SIGS)})")
    return (a, b)


def write_piece(piece: Piece, stem: Path, meta: dict[str, Any],
                wav: bool = True) -> dict[str, str]:
    """Write ``stem``.mid, .png (piano roll + metadata), .json and (``wav``) .wav.

    Returns the written paths (and ``wav_note`` when no WAV could be made).
    """
    from muselab.image.io import save_png
    from muselab.io import write_json
    from muselab.music.midi import piano_roll, render_wav, write_midi

    if not piece.notes:
        raise MuselabError(f"the model produced no notes for {stem} (try another --seed)")
    record = {**meta, "key": str(piece.key), "bars": piece.bars(), "notes": len(piece.notes),
              "time_signature": "/".join(map(str, piece.time_signature)), "tempo": piece.tempo}
    out = {"midi": str(write_midi(piece, stem.with_suffix(".mid"), record))}
    save_png(stem.with_suffix(".png"), piano_roll(piece), record)
    out["png"] = str(stem.with_suffix(".png"))
    note = (render_wav(stem.with_suffix(".mid"), stem.with_suffix(".wav"), metadata=record)
            if wav else "")
    if note is None:
        out["wav"] = str(stem.with_suffix(".wav"))
    elif note:
        out["wav_note"] = note
    write_json(stem.with_suffix(".json"), {**record, "files": out})
    return out
