"""The token grammar of generated music: which next tokens keep a piece well formed.

:class:`GrammarMask` is the Transformer's ``logits_mask`` for music: the header is given,
then only well-formed bars can be drawn (positions increase inside a bar, voices increase
inside a position, every note gets a duration that ends inside the piece, exactly the
requested number of bars, then ``EOS``). Harmonisation adds constraints: at each onset of
the given soprano line the soprano note and its duration are forced, and no other soprano
notes may appear, so the model writes the alto, tenor and bass around a fixed melody.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from muselab.music.tokens import BAR, BOS, EOS, MAX_DUR, PITCH_HI, PITCH_LO, VOCAB, Key

_K = {k: torch.from_numpy(VOCAB.of_kind(k)) for k in VOCAB.KINDS}  # kind -> bool [V]
_VAL = torch.from_numpy(VOCAB.value)  # [V]
_VOICE = torch.where(_K["note"], _VAL // 128, -1)  # [V] voice of note tokens, else -1
# The same per token as plain Python lists: the grammar reads them once per drawn token.
_KIND_OF = [VOCAB.KINDS[k] for k in VOCAB.kind.tolist()]
_VALUE_OF = VOCAB.value.tolist()


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
    voice_dur: dict[int, int] = field(default_factory=dict)  # voice -> its last duration
    pos_dur: int = -1  # token of the last duration at the current onset (-1: none yet)
    pos_pitch: int = -1  # pitch of the last note at the current onset (-1: none yet)
    pos_pcs: int = 0  # pitch classes at the current onset (bit i: pitch class i)


@dataclass
class GrammarMask:
    """``logits_mask`` for the Transformer: the next tokens that keep the piece well formed.

    ``melody`` (harmonisation) maps (bar, position) -> (pitch, duration) of soprano onsets.
    ``final_chord`` (pitch classes, root first; see :func:`closing_chord`) makes the last
    bar a held closing chord: one onset at its start where each voice sounds a chord note
    below the voice above it (the lowest voice the root, a single voice too; the third
    present), lasting to the end, then ``EOS``.
    With a melody the closing onset is the melody's last: the given soprano note, then the
    other voices on chord notes, held as long as it.

    The allowed set depends on a few fields of the grammar state only (:meth:`_state`), so
    each distinct set is computed once per piece and then looked up: per drawn token the
    mask costs a dictionary lookup instead of a dozen vocabulary-sized tensor operations.
    """

    bars: int  # total bars the piece must have (prompt bars included)
    bar_ticks: int
    voices: tuple[int, ...] = (0, 1, 2, 3)
    melody: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    final_chord: tuple[int, ...] = ()
    rows: list[_Row] = field(default_factory=list)
    _table: dict[tuple[int, ...], tuple[Tensor, int | None]] = field(default_factory=dict,
                                                                      repr=False)

    def __post_init__(self) -> None:
        self._last_onset = max(self.melody) if self.melody else None  # (bar, position)

    def __call__(self, tokens: Tensor) -> Tensor:  # [B, T] -> bool [B, V]
        if not self.rows:
            self.rows = [_Row() for _ in range(len(tokens))]
        return torch.stack([self._lookup(row, tokens[i])[0]
                            for i, row in enumerate(self.rows)])  # [B, V]

    def draft(self, tokens: Tensor) -> int | None:
        """A guess of the next token after ``tokens`` [1, T], for speculative decoding: the
        token the grammar forces, else, when a duration is due, the duration of the last
        note at this onset (the voices of a chorale often move together: right for 68 % of
        such durations in 50 generated chorales) or, for the first note at an onset, of
        this voice's previous note (right for 80 %), else of the last note."""
        if not self.rows:
            self.rows = [_Row()]
        row = self.rows[0]
        allowed, only = self._lookup(row, tokens[0])
        if only is not None or not row.expect_dur:
            return only
        guess = row.pos_dur if row.pos_dur >= 0 else row.voice_dur.get(row.voice, row.last_dur)
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
                int(row.bars < self.bars), bar,
                *((row.pos_pitch, row.pos_pcs) if self._closing(row) else (-1, 0)))

    def _consume(self, row: _Row, t: int) -> None:
        row.seen += 1
        row.last = t
        kind = _KIND_OF[t]
        if t == BAR:
            row.bars, row.pos, row.voice, row.expect_dur = row.bars + 1, -1, -1, False
            row.pos_dur, row.pos_pitch, row.pos_pcs = -1, -1, 0
        elif kind == "pos":
            row.pos, row.voice, row.pos_dur, row.pos_pitch = _VALUE_OF[t], -1, -1, -1
            row.pos_pcs = 0
        elif kind == "note":
            row.voice, row.expect_dur = _VALUE_OF[t] // 128, True
            row.pos_pitch = _VALUE_OF[t] % 128
            row.pos_pcs |= 1 << row.pos_pitch % 12
            mel = self.melody.get((row.bars - 1, row.pos))
            given = mel is not None and row.voice == 0  # the melody's own note
            row.forced_dur = mel[1] if mel is not None and given else 0
            if self._closing(row) and not given:
                row.forced_dur = self._closing_ticks(row)
        elif kind == "dur":
            row.expect_dur, row.last_dur, row.pos_dur = False, t, t
            row.voice_dur[row.voice] = t

    def _allowed(self, row: _Row) -> Tensor:
        if row.last == EOS:
            return _only(EOS)
        if row.expect_dur:
            return self._durations(row)
        if row.bars == 0:
            return _only(BAR)
        if self._closing(row):
            return self._closing_chord(row)
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

    def _closing(self, row: _Row) -> bool:
        """Whether the closing chord's rules apply: in the last bar, or with a melody once
        its last onset's soprano note is written."""
        if not self.final_chord:
            return False
        if not self.melody:
            return row.bars == self.bars
        return (row.bars - 1, row.pos) == self._last_onset and row.voice >= 0

    def _closing_ticks(self, row: _Row) -> int:
        """How long the closing chord lasts: to the end, or with a melody as its last note."""
        if self._last_onset is not None:
            return self.melody[self._last_onset][1]
        left = self.bars * self.bar_ticks - (row.bars - 1) * self.bar_ticks - row.pos
        return min(MAX_DUR, left)

    def _closing_chord(self, row: _Row) -> Tensor:
        if row.pos < 0:
            return _only(VOCAB.pos(0))
        later = [v for v in self.voices if v > row.voice]
        if not later:
            return _only(EOS)
        v, root, third = later[0], self.final_chord[:1], self.final_chord[1:2]
        pitch = _VAL % 128
        pcs = self.final_chord
        if v == self.voices[-1]:  # the lowest voice: the root
            pcs = root
        elif later[1:] == [self.voices[-1]] and third and not row.pos_pcs >> third[0] & 1:
            pcs = third  # the last voice above the bass: the third, if no voice has it yet
        ok = (_VOICE == v) & torch.isin(pitch % 12, torch.tensor(pcs))
        ok &= pitch >= self._closing_floor(v)  # room for the voices below
        if row.pos_pitch < 0:
            return ok
        below = ok & (pitch < row.pos_pitch)  # each voice under the one above (always
        return below if bool(below.any()) else ok  # possible unless a melody ends very low)

    def _closing_floor(self, voice: int) -> int:
        """The lowest pitch ``voice`` may take in the closing chord and still leave a lower
        chord note in range for every voice below it (the lowest voice: the root)."""
        lower = [v for v in self.voices if v >= voice]  # this voice and those below
        floor = PITCH_LO - 1
        for i in range(len(lower)):
            pcs = self.final_chord[:1] if i == 0 else self.final_chord
            floor = next(p for p in range(floor + 1, PITCH_HI + 1) if p % 12 in pcs)
        return floor

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


def closing_chord(key: Key) -> tuple[int, int, int]:
    """Pitch classes of the tonic triad of ``key``, root first: the chord a piece ends on
    (an authentic ending; Bach often raised the third of a minor key's last chord, the
    Picardy third, which this does not do)."""
    third = 3 if key.minor else 4
    return key.tonic, (key.tonic + third) % 12, (key.tonic + 7) % 12
