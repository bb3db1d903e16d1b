"""Character-level vocabulary for Chinese verse, with per-token prosody tables.

A sequence is ``<bos> <form> title... <sep> poem... <eos>``: the form token says which
verse form follows, the title (possibly empty) is the theme the poem is conditioned
on. The vocabulary stores, for every token, whether it is a Chinese character, its
rhyme class and its tone (see :mod:`muselab.poetry.prosody`), so that constrained
decoding needs only this file (no pypinyin at generation time).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muselab.errors import DataError, MuselabError
from muselab.io import atomic_open
from muselab.poetry.prosody import COMMA, FORMS, STOP, UNKNOWN, is_hanzi, rhyme_and_tone

BOS, EOS, SEP, UNK = "<bos>", "<eos>", "<sep>", "<unk>"
SPECIALS = (BOS, EOS, SEP, UNK, *(f"<{name}>" for name in FORMS))  # <bos> is id 0
VOCAB_FORMAT = 1


@dataclass
class CharVocab:
    """Tokens and their prosody: ``rhyme[i]`` (class or -1), ``tone[i]`` (0/1/-1)."""

    tokens: list[str]
    rhyme: np.ndarray  # int8 [V]
    tone: np.ndarray  # int8 [V]

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.hanzi = np.array([is_hanzi(t) for t in self.tokens], dtype=bool)  # [V]

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """The id of ``token`` (a special, a punctuation mark or a character); KeyError if none."""
        return self.index[token]

    def form_token(self, form: str) -> int:
        return self.index[f"<{form}>"]

    def encode(self, text: str, *, strict: bool = True) -> list[int]:
        """Character ids of ``text``; unknown characters raise (``strict``) or map to ``<unk>``."""
        ids = []
        for ch in text:
            if ch in self.index:
                ids.append(self.index[ch])
            elif strict:
                raise KeyError(ch)
            else:
                ids.append(self.index[UNK])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, specials dropped."""
        return "".join(t for i in ids if not (t := self.tokens[int(i)]).startswith("<"))

    def missing(self, text: str) -> list[str]:
        """The characters of ``text`` this vocabulary cannot write (in order, unique)."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.index or not is_hanzi(ch)))

    def sequence(self, form: str, title: str, body: str) -> list[int]:
        """``<bos> <form> title <sep> body <eos>`` as ids (unknown characters -> ``<unk>``)."""
        return [self.index[BOS], self.form_token(form), *self.encode(title, strict=False),
                self.index[SEP], *self.encode(body, strict=False), self.index[EOS]]

    # ------------------------------------------------------------------ files

    def to_json(self) -> dict[str, object]:
        return {"format": VOCAB_FORMAT, "tokens": self.tokens,
                "rhyme": self.rhyme.tolist(), "tone": self.tone.tolist()}

    def save(self, path: Path) -> None:
        with atomic_open(path, "w") as fh:
            json.dump(self.to_json(), fh, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: dict[str, object], source: str = "vocabulary") -> CharVocab:
        try:
            if data.get("format") != VOCAB_FORMAT:
                raise MuselabError(f"{source}: unsupported vocabulary format {data.get('format')}")
            tokens = [str(t) for t in data["tokens"]]  # type: ignore[attr-defined]
            rhyme = np.asarray(data["rhyme"], dtype=np.int8)
            tone = np.asarray(data["tone"], dtype=np.int8)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: not a muselab poetry vocabulary ({exc})") from exc
        same = len(tokens) == len(rhyme) == len(tone)
        if not same or tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise DataError(f"{source}: inconsistent poetry vocabulary")
        return cls(tokens, rhyme, tone)

    @classmethod
    def load(cls, path: Path) -> CharVocab:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read poetry vocabulary {path}: {exc}") from exc
        return cls.from_json(data, str(path))


def build_vocab(texts: Sequence[str], min_count: int = 2) -> CharVocab:
    """Specials, the two punctuation marks, then every Chinese character seen
    ``min_count`` times or more, most frequent first (ties by code point)."""
    counts = Counter(ch for text in texts for ch in text if is_hanzi(ch))
    chars = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
    tokens = [*SPECIALS, COMMA, STOP, *chars]
    table = [rhyme_and_tone(t) if is_hanzi(t) else (-1, UNKNOWN) for t in tokens]
    rhyme = np.array([r for r, _ in table], dtype=np.int8)
    tone = np.array([t for _, t in table], dtype=np.int8)
    return CharVocab(tokens, rhyme, tone)


def vocab_of(meta: dict[str, object], source: str) -> CharVocab:
    """The vocabulary stored in a token corpus's or model's ``meta["vocab"]``."""
    data = meta.get("vocab")
    if not isinstance(data, dict):
        raise DataError(f"{source} carries no poetry vocabulary (is it a Chinese verse corpus?)")
    return CharVocab.from_json(data, source)
