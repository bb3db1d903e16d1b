"""Constrained decoding of Chinese verse through the Transformer's ``logits_mask`` hook.

Given the tokens so far, :class:`ZhFormMask` allows only the next tokens that keep the
poem inside its form (Hokamp & Liu 2017 and Ghazvininejad et al. 2016 constrain
decoding the same way, for lexical constraints and for rhyme/metre respectively):

* a Chinese character while a line is unfinished, the fixed punctuation mark (``，``
  after odd lines, ``。`` after even ones) when it is complete, ``<eos>`` after the last;
* forced characters: the acrostic (藏头诗: line ``i`` starts with the ``i``-th character
  of the word) and an opening phrase (the theme written at the start of the first line);
* rhyme: the last characters of the even lines share the 中华新韵 class of the first
  of them (and never repeat a rhyme character);
* optionally the level/oblique pattern of regulated verse (see
  :func:`muselab.poetry.prosody.required_tone`);
* optionally novelty: the last character of a line may not complete a line of the
  training corpus (``avoid``, from :func:`line_endings`), so no line is copied verbatim.

The mask only ever narrows the set of characters, and every rule leaves a non-empty
set for any vocabulary that has at least ``MIN_RHYME_CHARS`` characters per rhyme
class it offers, so a poem of the requested form always comes out, whatever the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from muselab.errors import ConfigError
from muselab.poetry.prosody import COMMA, LEVEL, OBLIQUE, STOP, Form, required_tone
from muselab.poetry.vocab import EOS, CharVocab

#: A rhyme class may open the rhyme only if the vocabulary has this many characters in it.
MIN_RHYME_CHARS = 16


@dataclass
class ZhSpec:
    """What the poem must satisfy."""

    form: Form
    rhyme: bool = True
    tones: bool = False
    acrostic: str = ""
    opening: str = ""
    #: (line, column) -> forced character; filled from ``acrostic`` and ``opening``.
    forced: dict[tuple[int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.acrostic and len(self.acrostic) != self.form.lines:
            raise ConfigError(
                f"--acrostic {self.acrostic!r} has {len(self.acrostic)} characters, but a "
                f"{self.form.title} ({self.form.name}) has {self.form.lines} lines: give one "
                f"character per line or choose a form with {len(self.acrostic)} lines")
        if len(self.opening) >= self.form.chars:
            raise ConfigError(
                f"opening {self.opening!r} is {len(self.opening)} characters; a line of "
                f"{self.form.name} has {self.form.chars}: use at most {self.form.chars - 1}")
        if self.acrostic and self.opening and self.opening[0] != self.acrostic[0]:
            raise ConfigError(f"opening {self.opening!r} and acrostic {self.acrostic!r} "
                              "disagree on the first character")
        for i, ch in enumerate(self.acrostic):
            self.forced[(i, 0)] = ch
        for j, ch in enumerate(self.opening):
            self.forced[(0, j)] = ch


class ZhFormMask:
    """``logits_mask`` for :meth:`Transformer.generate`: tokens [B, T] -> allowed [B, V].

    ``prompt_len`` is the length of the prompt; everything after it is the poem body.
    """

    def __init__(self, vocab: CharVocab, spec: ZhSpec, prompt_len: int,
                 avoid: Mapping[tuple[int, ...], list[int]] | None = None) -> None:
        self.spec, self.prompt_len, self.vocab, self.avoid = spec, prompt_len, vocab, avoid
        missing = vocab.missing("".join(spec.forced.values()))
        if missing:
            raise ConfigError(f"the model's vocabulary has no {''.join(missing)!r} "
                              "(acrostic/opening characters must be Chinese characters it "
                              "has seen in training)")
        self.hanzi = torch.from_numpy(vocab.hanzi.copy())  # [V] bool
        self.rhyme = torch.from_numpy(vocab.rhyme.astype(np.int64))  # [V]
        self.tone = torch.from_numpy(vocab.tone.astype(np.int64))  # [V]
        self.comma, self.stop, self.eos = vocab.id(COMMA), vocab.id(STOP), vocab.id(EOS)
        self.forced = {pos: vocab.id(ch) for pos, ch in spec.forced.items()}
        self.rich_rhyme = self._rich_classes()  # [V] bool: may open the rhyme
        if not bool((self.hanzi & self.rich_rhyme).any()):
            raise ConfigError("the model's vocabulary has too few characters per rhyme class "
                              f"(fewer than {MIN_RHYME_CHARS}) to write rhyming verse")

    def _rich_classes(self) -> Tensor:
        ok = self.hanzi & (self.rhyme >= 0)
        if self.spec.tones:
            ok &= self.tone == LEVEL
        counts = torch.bincount(self.rhyme[ok], minlength=32)  # [classes]
        rich = counts >= MIN_RHYME_CHARS
        return ok & rich[self.rhyme.clamp(min=0)]

    def one_hot(self, token: int) -> Tensor:
        out = torch.zeros_like(self.hanzi)
        out[token] = True
        return out

    def __call__(self, tokens: Tensor) -> Tensor:
        rows = [self.allowed(row) for row in tokens[:, self.prompt_len :].tolist()]
        return torch.stack(rows).to(tokens.device)  # [B, V]

    def allowed(self, body: list[int]) -> Tensor:
        """Allowed next tokens [V] after the poem body ``body`` (token ids)."""
        form = self.spec.form
        line, col = divmod(len(body), form.chars + 1)
        if line >= form.lines:
            return self.one_hot(self.eos)
        if col == form.chars:
            return self.one_hot(self.comma if line % 2 == 0 else self.stop)
        if (line, col) in self.forced:
            return self.one_hot(self.forced[(line, col)])
        ok = self.hanzi.clone()
        if self.spec.tones:
            ok &= self._tone_rule(body, line, col)
        if self.spec.rhyme and line % 2 == 1 and col == form.chars - 1:
            ok &= self._rhyme_rule(body)
        if self.avoid is not None and col == form.chars - 1:
            banned = self.avoid.get(tuple(body[len(body) - col :]))
            if banned:
                fresh = ok.clone()
                fresh[banned] = False
                ok = fresh if bool(fresh.any()) else ok  # never leave no choice
        return ok

    def _char_at(self, body: list[int], line: int, col: int) -> int:
        return body[line * (self.spec.form.chars + 1) + col]

    def _tone_rule(self, body: list[int], line: int, col: int) -> Tensor:
        chars = self.spec.form.chars
        if line == 0 and col == 0:
            return torch.ones_like(self.hanzi)
        if line == 0 and col == 1:  # the 2nd character sets 平起 / 仄起
            return (self.tone == LEVEL) | (self.tone == OBLIQUE)
        first = int(self.tone[self._char_at(body, 0, 1)])
        start = first if first in (LEVEL, OBLIQUE) else LEVEL  # a forced, toneless character
        need = required_tone(line, col, chars, start)
        return torch.ones_like(self.hanzi) if need is None else self.tone == need

    def _rhyme_rule(self, body: list[int]) -> Tensor:
        chars = self.spec.form.chars
        ends = [self._char_at(body, i, chars - 1) for i in range(1, len(body) // (chars + 1), 2)]
        if not ends:  # the first rhyme: any class rich enough to continue
            return self.rich_rhyme
        ok = self.rhyme == self.rhyme[ends[0]]
        ok[ends] = False  # no rhyme character twice
        return ok


def line_endings(lines: Iterable[str], vocab: CharVocab,
                 chars: int) -> dict[tuple[int, ...], list[int]]:
    """For every corpus line of ``chars`` characters: its first ``chars - 1`` character ids
    -> the ids of the last characters that would complete it (for ``ZhFormMask.avoid``)."""
    out: dict[tuple[int, ...], list[int]] = {}
    for line in lines:
        if len(line) != chars or vocab.missing(line):
            continue
        ids = vocab.encode(line)
        out.setdefault(tuple(ids[:-1]), []).append(ids[-1])
    return out
