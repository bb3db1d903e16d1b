"""The shared text-image-music embedding space and its retrieval evaluation.

Text goes through MiniLM (all-MiniLM-L6-v2, 384-d, frozen); images and music through
small encoders trained contrastively into that space (:mod:`muselab.crossmodal.encoders`,
:mod:`muselab.crossmodal.train`). All embeddings are L2-normalised, so a dot product is a
cosine similarity.

Pairs:

* **images**: Google Noto and Twitter emoji (npm ``emoji-datasource-*``) and OpenMoji
  (npm ``openmoji``, CC BY-SA 4.0, matched to the emoji by code point), each captioned
  with the emoji's name, short names and sub-category. The held-out split is by emoji
  (an emoji, its skin tones and its three drawings are all held out together), so no
  held-out caption is ever seen in training.
* **music**: the music21 Bach chorales and Essen folk songs (the corpus' own held-out
  split), each described from its analysed features: style, key, metre, density and
  register (the last two as terciles of the training pieces of its style).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from muselab.errors import ConfigError, DataError, MuselabError
from muselab.models.text_encoder import DIM, embed_texts

if TYPE_CHECKING:
    from torch import nn

    from muselab.music.tokens import Piece

KINDS = ("image", "music")
IMAGE_SETS = ("emoji", "emoji-twitter", "openmoji")
HOLDOUT_EMOJI = 250  # emoji (with all their variants and drawings) held out
MUSIC_CORPORA = ("bach-chorales", "essen-folk")
STYLE_WORDS = {"bach": "four-part Bach chorale", "folk": "folk song melody"}
HEADER = 6  # BOS style key timesig tempo vel


def embed_text(texts: Sequence[str]) -> np.ndarray:
    """float32 [N, 384] unit-norm MiniLM embeddings (cached per text)."""
    return embed_texts(list(texts))


# -- pairs -------------------------------------------------------------------------------------

@dataclass
class Pairs:
    """Items (images uint8 [N, R, R, 3] or token ids int64 [N, T]) with one text each."""

    items: np.ndarray
    texts: list[str]
    groups: np.ndarray  # int64 [N]: items of one group are split together
    sources: list[str]  # the data set of each item
    primary: np.ndarray  # bool [N]: the item evaluated (an emoji's default drawing, a piece)

    def subset(self, idx: np.ndarray) -> Pairs:
        return Pairs(self.items[idx], [self.texts[i] for i in idx], self.groups[idx],
                     [self.sources[i] for i in idx], self.primary[idx])


def image_pairs(resolution: int = 32, progress: bool = False) -> Pairs:
    """Every emoji drawing of :data:`IMAGE_SETS` with its caption (OpenMoji when cached)."""
    from muselab.data.builtin import dataset_dir, get_info

    entries = json.loads((dataset_dir(get_info("emoji")) / "emoji.json").read_text("utf-8"))
    group: dict[str, int] = {}
    primary: set[str] = set()
    for i, e in enumerate(entries):
        group[str(e["image"]).lower()] = i
        primary.add(str(e["image"]).lower())
        for v in (e.get("skin_variations") or {}).values():
            group[str(v["image"]).lower()] = i
    items, texts, groups, sources, prim = [], [], [], [], []
    captions: dict[str, str] = {}
    for name in IMAGE_SETS:
        ds = _load_set(name, resolution, progress)
        if ds is None:
            continue
        if ds.captions is not None:
            captions.update({f.lower(): c for f, c in zip(ds.files, ds.captions, strict=True)})
        for img, f in zip(ds.images, ds.files, strict=True):
            key = Path(f).name.lower()
            if key in group and key in captions:
                items.append(img)
                texts.append(captions[key])
                groups.append(group[key])
                sources.append(name)
                prim.append(key in primary)
    return Pairs(np.stack(items), texts, np.array(groups, dtype=np.int64), sources,
                 np.array(prim, dtype=bool))


def _load_set(name: str, resolution: int, progress: bool) -> Any:
    from muselab.data import load_images

    if name != "openmoji":
        return load_images(name, resolution, progress=progress)
    from muselab.io import data_home
    from muselab.style.paired import OPENMOJI_VERSION

    folder = data_home() / f"openmoji-pairs-{OPENMOJI_VERSION}-64" / "B"
    if not folder.is_dir():  # optional: built by muselab.style.paired.openmoji_pairs
        return None
    return load_images(str(folder), resolution, progress=progress)


def music_pairs(split: str, max_tokens: int = 256,
                thresholds: dict[str, list[float]] | None = None) -> tuple[Pairs, dict[str, Any]]:
    """Pieces of both corpora's ``split`` ("train"/"val"), first bars up to ``max_tokens``,
    each with its description; returns the pairs and the tercile thresholds used
    (computed on ``split`` unless given)."""
    from muselab.music.corpus import load_music_corpus
    from muselab.music.tokens import decode

    rows: list[tuple[np.ndarray, Piece, str]] = []
    for name in MUSIC_CORPORA:
        for tokens in load_music_corpus(name, progress=False).pieces(split):
            body = _crop(tokens, max_tokens)
            piece = decode(np.concatenate([tokens[:HEADER], body]))
            if piece.notes:
                rows.append((body, piece, name))
    th = thresholds or _terciles([p for _, p, _ in rows])
    items = np.zeros((len(rows), max_tokens), dtype=np.int64)
    for i, (body, _, _) in enumerate(rows):
        items[i, : len(body)] = body
    texts = [describe_piece(p, th) for _, p, _ in rows]
    return Pairs(items, texts, np.arange(len(rows)), [s for _, _, s in rows],
                 np.ones(len(rows), dtype=bool)), th


def _crop(tokens: np.ndarray, max_tokens: int) -> np.ndarray:
    """The tokens after the header, cut at the last bar line that fits (EOS dropped)."""
    from muselab.music.tokens import BAR, EOS

    body = tokens[HEADER:]
    body = body[body != EOS]
    if len(body) <= max_tokens:
        return body
    bars = np.flatnonzero(body[: max_tokens + 1] == BAR)
    cut = int(bars[-1]) if len(bars) > 1 else max_tokens
    return body[:cut]


def _terciles(pieces: list[Piece]) -> dict[str, list[float]]:
    from muselab.crossmodal.features import music_features

    out: dict[str, list[float]] = {}
    for style in STYLE_WORDS:
        feats = [music_features(p) for p in pieces if p.style == style]
        if feats:
            for what in ("density", "register"):
                vals = [getattr(f, what) for f in feats]
                out[f"{style}.{what}"] = [float(q) for q in np.quantile(vals, [1 / 3, 2 / 3])]
    return out


def describe_piece(piece: Piece, thresholds: dict[str, list[float]]) -> str:
    """``"a folk song melody in G major, 3/4 time, busy, high register"``."""
    from muselab.crossmodal.features import music_features

    f = music_features(piece)
    words = {"density": ("sparse", "moderate", "busy"), "register": ("low", "middle", "high")}
    parts = []
    for what, names in words.items():
        th = thresholds.get(f"{piece.style}.{what}", [0.0, 0.0])
        parts.append(names[int(np.searchsorted(th, getattr(f, what)))])
    sig = "/".join(map(str, piece.time_signature))
    style = STYLE_WORDS.get(piece.style, "piece")
    return f"a {style} in {f.key}, {sig} time, {parts[0]}, {parts[1]} register"


def holdout_groups(pairs: Pairs, k: int = HOLDOUT_EMOJI) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) item indices, split by group with :func:`muselab.data.holdout_split`."""
    from muselab.data import holdout_split

    n = int(pairs.groups.max()) + 1
    _, held = holdout_split(n, k)
    out = np.isin(pairs.groups, held)
    return np.flatnonzero(~out), np.flatnonzero(out)


# -- encoders ----------------------------------------------------------------------------------

def resolve_encoder(kind: str, spec: str | Path | None = None) -> Path:
    """The weights of the ``kind`` encoder: a file, a run folder or a shipped model name
    (default ``crossmodal-<kind>``)."""
    from muselab.models.zoo import find_pretrained, verify
    from muselab.train.checkpoint import MODEL_FILE

    if kind not in KINDS:
        raise ConfigError(f"encoder kind {kind!r} is not one of: {', '.join(KINDS)}")
    name = str(spec) if spec is not None else f"crossmodal-{kind}"
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        raise MuselabError(f"--model {name}: the folder has no {MODEL_FILE}")
    try:
        entry = find_pretrained(name)
    except MuselabError:
        raise MuselabError(f"--model {name!r}: no {kind} encoder file, run or shipped model of "
                           "that name (train one: python -m muselab.crossmodal.train "
                           f"{kind})") from None
    verify(entry)
    return entry.weights


def load_encoder(kind: str, spec: str | Path | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The ``kind`` encoder (eval mode, float32) and its saved config (cached per file
    version, so repeated calls do not reread the weights)."""
    path = resolve_encoder(kind, spec)
    stat = path.stat()
    encoder, config = _load_encoder_file(kind, str(path.resolve()), stat.st_mtime_ns,
                                         stat.st_size)
    return encoder, dict(config)


@lru_cache(maxsize=8)
def _load_encoder_file(kind: str, path: str, mtime_ns: int, size: int
                       ) -> tuple[nn.Module, dict[str, Any]]:
    from muselab.crossmodal.train import build_encoder
    from muselab.train.checkpoint import load_model, read_metadata

    meta = read_metadata(Path(path))
    try:
        config = json.loads(meta["config"])
        found = config["kind"]
    except (KeyError, ValueError, TypeError) as exc:
        raise MuselabError(f"{path} is not a muselab cross-modal encoder") from exc
    if found != kind:
        raise MuselabError(f"{path} is a {found} encoder, not a {kind} encoder")
    encoder = build_encoder(kind, config["encoder"])
    load_model(Path(path), {"encoder": encoder}, strict=False)
    return encoder.float().eval(), {**config, "path": path, "step": meta.get("step")}


def embed_images(imgs: np.ndarray | Sequence[np.ndarray], model: str | Path | None = None,
                 batch: int = 512) -> np.ndarray:
    """float32 [N, 384] unit-norm embeddings of images (uint8 [H, W, 3] each, any size)."""
    import torch

    from muselab.crossmodal.features import as_rgb

    encoder, config = load_encoder("image", model)
    r = int(config["encoder"]["resolution"])
    arr = np.stack([_resize(as_rgb(im, f"image {i}"), r) for i, im in enumerate(imgs)])
    return _run(encoder, torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0,
                batch)


def embed_music(pieces: Sequence[Piece] | np.ndarray, model: str | Path | None = None,
                batch: int = 256) -> np.ndarray:
    """float32 [N, 384] unit-norm embeddings of pieces (or header-less token rows [N, T])."""
    import torch

    from muselab.music.tokens import encode

    encoder, config = load_encoder("music", model)
    t = int(config["encoder"]["max_tokens"])
    if isinstance(pieces, np.ndarray):
        rows = pieces[:, :t]
    else:
        rows = np.zeros((len(pieces), t), dtype=np.int64)
        for i, p in enumerate(pieces):
            if not p.notes:
                raise DataError(f"piece {i} has no notes: nothing to embed")
            body = _crop(np.array(encode(p)), t)
            rows[i, : len(body)] = body
    return _run(encoder, torch.from_numpy(np.asarray(rows, dtype=np.int64)), batch)


def _run(encoder: nn.Module, x: Any, batch: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    if len(x) == 0:
        return np.zeros((0, DIM), np.float32)
    with torch.no_grad():
        out = torch.cat([F.normalize(encoder(x[i : i + batch]), dim=1)
                         for i in range(0, len(x), batch)])
    return out.numpy().astype(np.float32)


def _resize(img: np.ndarray, r: int) -> np.ndarray:
    from PIL import Image

    if img.shape[:2] == (r, r):
        return img
    return np.asarray(Image.fromarray(img).resize((r, r), Image.Resampling.BICUBIC))


# -- retrieval ---------------------------------------------------------------------------------

def recall_at_k(sim: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Share of queries (rows of ``sim`` [Q, C]) with a relevant candidate in their top ``k``."""
    top = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # [Q, k]
    return float(np.take_along_axis(relevant, top, axis=1).any(axis=1).mean())


def chance_at_k(relevant: np.ndarray, k: int) -> float:
    """Expected recall@k of a random ranking: 1 - C(C - m, k) / C(C, k) per query."""
    c = relevant.shape[1]
    return float(np.mean([1.0 - comb(c - int(m), k) / comb(c, k) for m in relevant.sum(1)]))


def retrieval(x: np.ndarray, x_texts: list[str], ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Recall@k both ways between items ``x`` [N, D] and the distinct texts among ``x_texts``.

    item -> text: each item against every distinct text (one is right); text -> item: each
    distinct text against every item (all items carrying it are right).
    """
    texts = sorted(set(x_texts))
    t = embed_text(texts)  # [M, 384]
    index = {s: i for i, s in enumerate(texts)}
    rel = np.zeros((len(x), len(texts)), dtype=bool)  # [N, M]
    rel[np.arange(len(x)), [index[s] for s in x_texts]] = True
    sim = x @ t.T  # [N, M]
    out: dict[str, Any] = {"items": len(x), "texts": len(texts)}
    for k in ks:
        out[f"item->text R@{k}"] = recall_at_k(sim, rel, k)
        out[f"item->text chance@{k}"] = chance_at_k(rel, k)
        out[f"text->item R@{k}"] = recall_at_k(sim.T, rel.T, k)
        out[f"text->item chance@{k}"] = chance_at_k(rel.T, k)
    return out


def evaluate_retrieval(kind: str, model: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Held-out retrieval of the ``kind`` encoder, one table per data set."""
    if kind == "image":
        pairs = image_pairs()
        _, held = holdout_groups(pairs)
        test = pairs.subset(held[pairs.primary[held]])
        x = embed_images(test.items, model)
        return {name: retrieval(x[np.array(test.sources) == name],
                                [t for t, s in zip(test.texts, test.sources, strict=True)
                                 if s == name])
                for name in IMAGE_SETS if name in test.sources}
    if kind != "music":
        raise ConfigError(f"retrieval kind {kind!r} is not one of: {', '.join(KINDS)}")
    _, config = load_encoder("music", model)
    test, _ = music_pairs("val", int(config["encoder"]["max_tokens"]), config["thresholds"])
    x = embed_music(test.items, model)
    src = np.array(test.sources)
    return {name: retrieval(x[src == name], [t for t, s in zip(test.texts, test.sources,
                                                               strict=True) if s == name])
            for name in MUSIC_CORPORA if name in test.sources}
