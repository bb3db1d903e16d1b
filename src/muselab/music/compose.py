"""Compose, continue and harmonise with a trained music language model.

Generation is constrained by a token grammar (:class:`GrammarMask`, passed as the
Transformer's ``logits_mask``): the header is given, then only well-formed bars can be
drawn (positions increase inside a bar, voices increase inside a position, every note
gets a duration that ends inside the piece, exactly the requested number of bars, then
``EOS``). Harmonisation adds constraints: at each onset of the given soprano line the
soprano note and its duration are forced, and no other soprano notes may appear, so the
model writes the alto, tenor and bass around a fixed melody.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from muselab.errors import ConfigError, MuselabError
from muselab.models.transformer import Transformer
from muselab.music.tokens import (
    BAR,
    BOS,
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

_K = {k: torch.from_numpy(VOCAB.of_kind(k)) for k in VOCAB.KINDS}  # kind -> bool [V]
_VAL = torch.from_numpy(VOCAB.value)  # [V]
_VOICE = torch.where(_K["note"], _VAL // 128, -1)  # [V] voice of note tokens, else -1
# The same per token as plain Python lists: the grammar reads them once per drawn token.
_KIND_OF = [VOCAB.KINDS[k] for k in VOCAB.kind.tolist()]
_VALUE_OF = VOCAB.value.tolist()
C_MAJOR = Key(0)


@dataclass
class _Row:
    """Grammar state of one sequence, updated token by token."""

    seen: int = 0  # tokens consumed
    bars: int = 0  # Bar tokens so far
    pos: int = -1  # onset position in the current bar (-1: none yet)
    voice: int = -1  # voice of the last note at this position (-1: none yet)
    expect_dur: bool = False
    forced_dur: int = 0  # harmonisation: the duration the soprano note must get
    last: int = BOS
    last_dur: int = -1  # token of the last duration drawn (-1: none yet)
    pos_dur: int = -1  # token of the last duration at the current onset (-1: none yet)


@dataclass
class GrammarMask:
    """``logits_mask`` for the Transformer: the next tokens that keep the piece well formed.

    ``melody`` (harmonisation) maps (bar, position) -> (pitch, duration) of soprano onsets.

    The allowed set depends on a few fields of the grammar state only (:meth:`_state`), so
    each distinct set is computed once per piece and then looked up: per drawn token the
    mask costs a dictionary lookup instead of a dozen vocabulary-sized tensor operations.
    """

    bars: int  # total bars the piece must have (prompt bars included)
    bar_ticks: int
    voices: tuple[int, ...] = (0, 1, 2, 3)
    melody: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    rows: list[_Row] = field(default_factory=list)
    _table: dict[tuple[int, ...], tuple[Tensor, int | None]] = field(default_factory=dict,
                                                                      repr=False)

    def __call__(self, tokens: Tensor) -> Tensor:  # [B, T] -> bool [B, V]
        if not self.rows:
            self.rows = [_Row() for _ in range(len(tokens))]
        return torch.stack([self._lookup(row, tokens[i])[0]
                            for i, row in enumerate(self.rows)])  # [B, V]

    def draft(self, tokens: Tensor) -> int | None:
        """A guess of the next token after ``tokens`` [1, T], for speculative decoding: the
        token the grammar forces, else, when a duration is due, the duration of the last
        note at this onset (the voices of a chorale often move together; 61 % of the
        generated durations) or of the last note."""
        if not self.rows:
            self.rows = [_Row()]
        row = self.rows[0]
        allowed, only = self._lookup(row, tokens[0])
        if only is not None or not row.expect_dur:
            return only
        guess = row.pos_dur if row.pos_dur >= 0 else row.last_dur
        return guess if guess >= 0 and bool(allowed[guess]) else None

    def _lookup(self, row: _Row, tokens: Tensor) -> tuple[Tensor, int | None]:
        """Consume the row's new ``tokens`` [T]; (allowed set [V], its only token or None)."""
        for t in tokens[row.seen :].tolist():
            self._consume(row, t)
        key = self._state(row)
        entry = self._table.get(key)
        if entry is None:
            allowed = self._allowed(row)
            single = allowed.nonzero()[:, 0].tolist()
            entry = self._table[key] = (allowed, single[0] if len(single) == 1 else None)
        return entry

    def reference(self, tokens: list[int]) -> list[Tensor]:
        """The allowed sets [V] after each prefix of ``tokens``, computed afresh for every
        prefix (no lookup table): what :meth:`__call__` must return, for tests."""
        row, out = _Row(), []
        for t in tokens:
            self._consume(row, t)
            out.append(self._allowed(row))
        return out

    def _state(self, row: _Row) -> tuple[int, ...]:
        """The fields of ``row`` that :meth:`_allowed` depends on."""
        if row.last == EOS:
            return (0,)
        if row.expect_dur:
            end = self.bars * self.bar_ticks - ((row.bars - 1) * self.bar_ticks + row.pos)
            return (1, row.forced_dur, min(MAX_DUR, max(1, end)))
        if row.bars == 0:
            return (2,)
        bar = row.bars if self.melody else -1  # melody constraints depend on the bar
        return (3, row.pos, row.voice, int(_KIND_OF[row.last] == "vel"),
                int(row.bars < self.bars), bar)

    def _consume(self, row: _Row, t: int) -> None:
        row.seen += 1
        row.last = t
        kind = _KIND_OF[t]
        if t == BAR:
            row.bars, row.pos, row.voice, row.expect_dur = row.bars + 1, -1, -1, False
            row.pos_dur = -1
        elif kind == "pos":
            row.pos, row.voice, row.pos_dur = _VALUE_OF[t], -1, -1
        elif kind == "note":
            row.voice, row.expect_dur = _VALUE_OF[t] // 128, True
            mel = self.melody.get((row.bars - 1, row.pos))
            row.forced_dur = mel[1] if mel and row.voice == 0 else 0
        elif kind == "dur":
            row.expect_dur, row.last_dur, row.pos_dur = False, t, t

    def _allowed(self, row: _Row) -> Tensor:
        if row.last == EOS:
            return _only(EOS)
        if row.expect_dur:
            return self._durations(row)
        if row.bars == 0:
            return _only(BAR)
        allowed = torch.zeros(len(VOCAB), dtype=torch.bool)
        after_vel = bool(_K["vel"][row.last])
        if row.pos >= 0:
            notes = self._notes(row)
            if row.voice < 0 or after_vel:  # after Pos or Vel a note must follow
                forced = (row.bars - 1, row.pos) in self.melody and row.voice < 0
                return notes if after_vel or forced else notes | _K["vel"]
            allowed |= notes
            if bool(notes.any()) and not self.melody:
                allowed |= _K["vel"]
        nxt = self._next_melody(row)
        pos_ok = (_VAL > row.pos) & (_VAL < self.bar_ticks)
        if nxt is not None:
            pos_ok &= _VAL <= nxt
        allowed |= _K["pos"] & pos_ok
        if nxt is None:
            allowed[BAR if row.bars < self.bars else EOS] = True
        return allowed

    def _notes(self, row: _Row) -> Tensor:
        mel = self.melody.get((row.bars - 1, row.pos))
        if mel is not None and row.voice < 0:  # the soprano note comes first, as given
            return _only(VOCAB.note(0, mel[0]))
        ok = _K["note"] & (_VOICE > row.voice) & torch.isin(_VOICE, torch.tensor(self.voices))
        if self.melody:
            ok &= _VOICE != 0
        return ok

    def _durations(self, row: _Row) -> Tensor:
        if row.forced_dur:
            return _only(VOCAB.dur(row.forced_dur))
        left = self.bars * self.bar_ticks - ((row.bars - 1) * self.bar_ticks + row.pos)
        return _K["dur"] & (_VAL <= min(MAX_DUR, max(1, left)))

    def _next_melody(self, row: _Row) -> int | None:
        bar = row.bars - 1
        later = [p for (b, p) in self.melody if b == bar and p > row.pos]
        return min(later) if later else None


def _only(token: int) -> Tensor:
    out = torch.zeros(len(VOCAB), dtype=torch.bool)
    out[token] = True
    return out


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
                seed: int = 0, sampling: Sampling | None = None) -> list[Piece]:
        """``n`` new pieces of ``bars`` bars with the given header (one batch)."""
        _check(style, bars, n)
        head = header(Piece([], key, time_signature, tempo, style))
        prompts = torch.tensor([head] * n)  # [n, 6]
        voices = (0,) if style == "folk" else tuple(range(N_VOICES))
        mask = GrammarMask(bars, _bar_ticks(time_signature), voices)
        pieces = self._generate(prompts, mask, _budget(bars), seed, sampling or Sampling())
        return [replace(p, tempo=tempo, n_bars=bars) for p in pieces]

    def continue_piece(self, start: Piece, *, bars: int = 8, seed: int = 0,
                       sampling: Sampling | None = None) -> Piece:
        """``start`` followed by ``bars`` new bars."""
        _check(start.style, bars, 1)
        if start.style == "folk":  # a monophonic model: keep the top voice
            start = replace(start, notes=[n for n in start.notes if n.voice == 0])
        prompt = [*encode(start, eos=False), BAR]  # the new music starts on a new bar
        total = start.bars() + bars
        voices = (0,) if start.style == "folk" else tuple(range(N_VOICES))
        mask = GrammarMask(total, start.bar_ticks, voices)
        piece = self._generate(torch.tensor([prompt]), mask, _budget(bars), seed,
                               sampling or Sampling())[0]
        return replace(piece, tempo=start.tempo, n_bars=total)

    def harmonize(self, melody: Piece, *, seed: int = 0,
                  sampling: Sampling | None = None) -> Piece:
        """Alto, tenor and bass under the soprano line ``melody`` (its top voice)."""
        line = soprano_line(melody)
        bt = melody.bar_ticks
        forced = {(n.start // bt, n.start % bt): (n.pitch, n.duration) for n in line}
        total = max(n.start + n.duration - 1 for n in line) // bt + 1
        head = header(Piece([], melody.key, melody.time_signature, melody.tempo, "bach"))
        mask = GrammarMask(total, bt, tuple(range(N_VOICES)), forced)
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
