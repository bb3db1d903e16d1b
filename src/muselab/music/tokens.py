"""A REMI-like multi-voice tokenizer (Huang & Yang 2020, "Pop Music Transformer").

A piece is a header, then one ``Bar`` token per bar, each followed by its onsets::

    BOS Style_bach Key_G_major TimeSig_3/4 Tempo_90 Vel_80
    Bar Pos_0 V0_P67 Dur_4 V1_P62 Dur_4 V2_P59 Dur_4 V3_P43 Dur_4 Pos_4 ... Bar ... EOS

* time on a sixteenth-note grid (``TPQ = 4`` ticks per quarter); ``Pos_k`` is the onset
  within the bar, ``Dur_d`` the length in ticks (1 .. 32);
* voice and pitch are one compound token ``V<v>_P<p>`` (voices 0-3 = soprano, alto,
  tenor, bass; a monophonic tune is voice 0), as in compound-word tokenizers
  (Hsiao et al. 2021), which keeps four-voice chorales short;
* velocity is running status: a ``Vel_v`` token only where the (binned) velocity changes;
* the header carries style, key (24), time signature and tempo as conditioning.

This module needs numpy only; MIDI and music21 live in :mod:`muselab.music.midi` and
:mod:`muselab.music.corpus`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from muselab.errors import ConfigError

TPQ = 4  # ticks per quarter note (sixteenth-note grid)
MAX_BAR = 32  # longest bar in ticks (8 quarters)
MAX_DUR = 32  # longest note in ticks; longer notes are clipped
PITCH_LO, PITCH_HI = 28, 96  # MIDI range of note tokens (E1 .. C7)
N_VOICES = 4
STYLES = ("bach", "folk", "other")
TIME_SIGS = ((2, 4), (3, 4), (4, 4), (5, 4), (6, 4), (2, 2), (3, 2),
             (3, 8), (6, 8), (9, 8), (12, 8))
TEMPOS = (40, 48, 56, 64, 72, 80, 90, 100, 112, 126, 144, 160, 184, 208)
VELOCITIES = (16, 32, 48, 64, 80, 96, 112, 127)
DEFAULT_VELOCITY = 80
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PAD, BOS, EOS, BAR = 0, 1, 2, 3


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class 0-11 and mode."""

    tonic: int
    minor: bool = False

    def __str__(self) -> str:
        return f"{TONICS[self.tonic]} {'minor' if self.minor else 'major'}"

    def transpose(self, semitones: int) -> Key:
        return Key((self.tonic + semitones) % 12, self.minor)


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]|-|sharp|flat)?\s*(major|minor|maj|min|m|M)?\s*$")
_NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> Key:
    """``"D minor"``, ``"Bb major"``, ``"f#"`` (lower case: minor), ``"Eb"`` -> :class:`Key`."""
    m = _KEY_RE.match(text or "")
    if not m:
        raise ConfigError(f"--key {text!r} is not a key name (examples: 'D minor', 'Bb major', "
                          "'F# minor', 'c' for C minor)")
    letter, accidental, mode = m.groups()
    pc = _NATURAL[letter.upper()]
    if accidental in ("#", "♯", "sharp"):
        pc += 1
    elif accidental in ("b", "♭", "-", "flat"):
        pc -= 1
    minor = mode in ("minor", "min", "m") if mode else letter.islower()
    return Key(pc % 12, minor)


@dataclass(frozen=True, order=True)
class Note:
    """A note on the tick grid."""

    start: int  # ticks from the start of bar 0
    duration: int  # ticks >= 1
    pitch: int  # MIDI number
    voice: int = 0  # 0 = soprano / melody
    velocity: int = DEFAULT_VELOCITY


@dataclass
class Piece:
    """Notes plus the header the tokens carry."""

    notes: list[Note]
    key: Key = field(default_factory=lambda: Key(0))
    time_signature: tuple[int, int] = (4, 4)
    tempo: float = 90.0
    style: str = "bach"
    n_bars: int = 0  # at least this many bars (trailing empty bars); 0 = from the notes

    @property
    def bar_ticks(self) -> int:
        return bar_ticks(self.time_signature)

    def bars(self) -> int:
        """Number of bars: the declared count or the last sounding bar, whichever is larger."""
        end = max((n.start // self.bar_ticks + 1 for n in self.notes), default=0)
        return max(self.n_bars, end)


def bar_ticks(ts: tuple[int, int]) -> int:
    """Length of a bar of time signature ``ts`` in ticks (4/4 -> 16)."""
    return ts[0] * 4 * TPQ // ts[1]


class Vocab:
    """Token names and, per id, its kind and value (for masks and transposition)."""

    KINDS = ("special", "style", "key", "timesig", "tempo", "vel", "bar", "pos", "note", "dur")

    def __init__(self) -> None:
        names: list[tuple[str, str, int]] = [
            ("PAD", "special", 0), ("BOS", "special", 1), ("EOS", "special", 2), ("Bar", "bar", 0)]
        names += [(f"Style_{s}", "style", i) for i, s in enumerate(STYLES)]
        names += [(f"Key_{TONICS[t]}_{m}", "key", t + 12 * (m == "minor"))
                  for m in ("major", "minor") for t in range(12)]
        names += [(f"TimeSig_{a}/{b}", "timesig", i) for i, (a, b) in enumerate(TIME_SIGS)]
        names += [(f"Tempo_{t}", "tempo", t) for t in TEMPOS]
        names += [(f"Vel_{v}", "vel", v) for v in VELOCITIES]
        names += [(f"Pos_{p}", "pos", p) for p in range(MAX_BAR)]
        names += [(f"V{v}_P{p}", "note", v * 128 + p)
                  for v in range(N_VOICES) for p in range(PITCH_LO, PITCH_HI + 1)]
        names += [(f"Dur_{d}", "dur", d) for d in range(1, MAX_DUR + 1)]
        self.names = tuple(n for n, _, _ in names)
        self.ids = {n: i for i, n in enumerate(self.names)}
        self.kind = np.array([self.KINDS.index(k) for _, k, _ in names], dtype=np.int64)  # [V]
        self.value = np.array([v for _, _, v in names], dtype=np.int64)  # [V]

    def __len__(self) -> int:
        return len(self.names)

    def of_kind(self, kind: str) -> np.ndarray:
        """Boolean mask [V] of the tokens of ``kind``."""
        return self.kind == self.KINDS.index(kind)

    def note(self, voice: int, pitch: int) -> int:
        return self.ids[f"V{voice}_P{pitch}"]

    def pos(self, p: int) -> int:
        return self.ids[f"Pos_{p}"]

    def dur(self, d: int) -> int:
        return self.ids[f"Dur_{min(MAX_DUR, max(1, d))}"]

    def key(self, key: Key) -> int:
        return self.ids[f"Key_{TONICS[key.tonic]}_{'minor' if key.minor else 'major'}"]

    def style(self, style: str) -> int:
        return self.ids[f"Style_{style if style in STYLES else 'other'}"]

    def timesig(self, ts: tuple[int, int]) -> int:
        if tuple(ts) not in TIME_SIGS:
            raise ConfigError(f"time signature {ts[0]}/{ts[1]} is not supported (supported: "
                              f"{', '.join(f'{a}/{b}' for a, b in TIME_SIGS)})")
        return self.ids[f"TimeSig_{ts[0]}/{ts[1]}"]

    def tempo(self, bpm: float) -> int:
        return self.ids[f"Tempo_{min(TEMPOS, key=lambda t: abs(t - bpm))}"]

    def vel(self, velocity: int) -> int:
        return self.ids[f"Vel_{velocity_bin(velocity)}"]


def velocity_bin(velocity: int) -> int:
    return min(VELOCITIES, key=lambda v: abs(v - velocity))


VOCAB = Vocab()


def header(piece: Piece, velocity: int = DEFAULT_VELOCITY) -> list[int]:
    """BOS, style, key, time signature, tempo and the starting velocity."""
    v = VOCAB
    return [BOS, v.style(piece.style), v.key(piece.key), v.timesig(piece.time_signature),
            v.tempo(piece.tempo), v.vel(velocity)]


def encode(piece: Piece, *, eos: bool = True) -> list[int]:
    """Tokens of ``piece``: header, one ``Bar`` per bar with its onsets, then ``EOS``."""
    v, bt = VOCAB, piece.bar_ticks
    notes = sorted(piece.notes, key=lambda n: (n.start, n.voice, -n.pitch))
    for n in notes:
        check_note(n)
    vel = velocity_bin(notes[0].velocity) if notes else DEFAULT_VELOCITY
    out = header(piece, vel)
    by_bar: dict[int, list[Note]] = {}
    for n in notes:
        by_bar.setdefault(n.start // bt, []).append(n)
    for bar in range(piece.bars()):
        out.append(BAR)
        pos = -1
        for n in by_bar.get(bar, []):
            if n.start - bar * bt != pos:
                pos = n.start - bar * bt
                out.append(v.pos(pos))
            if velocity_bin(n.velocity) != vel:
                vel = velocity_bin(n.velocity)
                out.append(v.vel(vel))
            out += [v.note(n.voice, n.pitch), v.dur(n.duration)]
    if eos:
        out.append(EOS)
    return out


def check_note(n: Note) -> None:
    if not PITCH_LO <= n.pitch <= PITCH_HI:
        raise ConfigError(f"pitch {n.pitch} is outside the tokenizer range "
                          f"{PITCH_LO}..{PITCH_HI}")
    if not 0 <= n.voice < N_VOICES:
        raise ConfigError(f"voice {n.voice} is outside 0..{N_VOICES - 1}")
    if n.start < 0 or n.duration < 1:
        raise ConfigError(f"note at {n.start} with duration {n.duration}: bad timing")


def decode(tokens: list[int] | np.ndarray) -> Piece:
    """A :class:`Piece` from tokens (lenient: tokens out of place are skipped)."""
    v = VOCAB
    piece = Piece(notes=[], n_bars=0)
    seen: set[str] = set()
    bar, pos, vel = -1, 0, DEFAULT_VELOCITY
    pending: tuple[int, int] | None = None  # (voice, pitch) waiting for its duration
    for t in (int(x) for x in tokens):
        if not 0 <= t < len(v) or t == PAD:
            continue
        kind, value = v.KINDS[v.kind[t]], int(v.value[t])
        if t == EOS:
            break
        if kind in ("style", "key", "timesig", "tempo") and kind not in seen:
            seen.add(kind)
            _set_header(piece, kind, value)
        elif kind == "bar":
            bar, pos = bar + 1, 0
        elif kind == "pos":
            pos = value
        elif kind == "vel":
            vel = value
        elif kind == "note":
            pending = (value // 128, value % 128)
        elif kind == "dur" and pending is not None:
            start = max(bar, 0) * piece.bar_ticks + pos
            piece.notes.append(Note(start, value, pending[1], pending[0], vel))
            pending = None
    piece.n_bars = max(bar + 1, 0)
    return piece


def _set_header(piece: Piece, kind: str, value: int) -> None:
    if kind == "style":
        piece.style = STYLES[value]
    elif kind == "key":
        piece.key = Key(value % 12, value >= 12)
    elif kind == "timesig":
        piece.time_signature = TIME_SIGS[value]
    else:
        piece.tempo = float(value)


def transpose_table() -> np.ndarray:
    """int64 [12, V]: row ``s + 5`` maps each token to its transposition by ``s`` semitones
    (s in -5..6); a note that would leave the pitch range maps to -1."""
    v = VOCAB
    table = np.tile(np.arange(len(v)), (12, 1))
    notes, keys = np.flatnonzero(v.of_kind("note")), np.flatnonzero(v.of_kind("key"))
    for row, s in enumerate(range(-5, 7)):
        for t in notes:
            voice, pitch = divmod(int(v.value[t]), 128)
            table[row, t] = v.note(voice, pitch + s) if PITCH_LO <= pitch + s <= PITCH_HI else -1
        for t in keys:
            val = int(v.value[t])
            table[row, t] = v.key(Key((val % 12 + s) % 12, val >= 12))
    return table
