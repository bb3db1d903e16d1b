"""Metrics of generated verse: form validity, rhyme, tone pattern, diversity, copying.

* **form-valid**: the poem is exactly a known form with the punctuation in place
  (``，`` after odd lines, ``。`` after even lines; only Chinese characters in lines);
  for English, the requested number of lines (and syllables, when a count is set).
* **rhyming**: the last characters of all even lines share a 中华新韵 class (Chinese),
  or the line-end words follow the rhyme scheme by CMUdict rhyming parts (English).
* **tone match**: share of the tone-constrained positions that follow the regulated
  pattern, for the better of 平起 / 仄起 (Chinese only).
* **distinct-n** (Li et al. 2016): distinct n-grams / all n-grams over every poem.
* **copied lines**: share of generated lines that occur verbatim in the training corpus
  (a set of every corpus line: an exact n-gram index at line granularity).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from muselab.poetry.prosody import (
    FORMS,
    LEVEL,
    OBLIQUE,
    Form,
    is_hanzi,
    layout,
    regular_form,
    required_tone,
    rhyme_and_tone,
)

_LINE_END = re.compile(r"[，。！？；、,.!?;]")


def zh_lines(poem: str) -> list[str]:
    """The lines of a Chinese poem (split at punctuation and line breaks)."""
    return [s for s in _LINE_END.split(poem.replace("\n", "")) if s.strip()]


def zh_form(poem: str) -> Form | None:
    """The form ``poem`` is a valid instance of, or ``None``."""
    text = "".join(poem.split())
    lines = zh_lines(text)
    name = regular_form(lines)
    if name is None or text != layout(lines):
        return None
    return FORMS[name]


def zh_rhymes(lines: Sequence[str]) -> bool:
    """Whether the last characters of the even lines share one rhyme class (and exist)."""
    ends = [s[-1] for s in lines[1::2] if s]
    if len(ends) < 2:
        return False
    classes = {rhyme_and_tone(ch)[0] for ch in ends}
    return len(classes) == 1 and -1 not in classes


def zh_tone_match(lines: Sequence[str]) -> float:
    """Share of tone-constrained positions that follow the pattern (best start)."""
    if not lines or len({len(s) for s in lines}) != 1:
        return 0.0
    chars = len(lines[0])
    best = 0.0
    for start in (LEVEL, OBLIQUE):
        hit = total = 0
        for i, s in enumerate(lines):
            for j, ch in enumerate(s):
                need = required_tone(i, j, chars, start)
                if need is not None:
                    total += 1
                    hit += rhyme_and_tone(ch)[1] == need
        best = max(best, hit / max(1, total))
    return best


def distinct_n(texts: Iterable[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of the token sequences ``texts`` (Li et al. 2016)."""
    grams = [tuple(t[i : i + n]) for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@dataclass
class PoemScores:
    """Aggregate scores of a set of poems (fractions in [0, 1])."""

    poems: int
    form_valid: float
    rhyming: float
    tone_match: float | None  # None for English (no tone pattern)
    distinct_1: float
    distinct_2: float
    copied_lines: float | None  # None when no corpus line set was given
    lines: int

    def as_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


def score_zh(poems: Sequence[str], corpus_lines: set[str] | None = None,
             form: str | None = None) -> PoemScores:
    """Scores of Chinese poems; ``form`` (a name) also requires that form."""
    valid = rhyme = 0
    tones: list[float] = []
    all_lines: list[str] = []
    for poem in poems:
        f = zh_form(poem)
        lines = zh_lines(poem)
        all_lines += lines
        valid += f is not None and (form is None or f.name == form)
        rhyme += zh_rhymes(lines)
        tones.append(zh_tone_match(lines))
    n = max(1, len(poems))
    chars = ["".join(zh_lines(p)) for p in poems]
    copied = None
    if corpus_lines is not None:
        copied = sum(s in corpus_lines for s in all_lines) / max(1, len(all_lines))
    return PoemScores(len(poems), valid / n, rhyme / n, sum(tones) / n,
                      distinct_n(chars, 1), distinct_n(chars, 2), copied, len(all_lines))


def looks_chinese(text: str) -> bool:
    """Whether most letters of ``text`` are Chinese characters."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(is_hanzi(ch) for ch in letters) > len(letters) / 2
