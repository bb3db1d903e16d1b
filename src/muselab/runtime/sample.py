"""Sampling and image-to-image with exported models, in numpy + onnxruntime only.

Seeds mean the same on every machine here, but not the same as in torch: image ``i``
starts from ``numpy.random.default_rng(seed_i)`` (its latent, then any DDIM noise), so
an image depends only on its seed and settings, never on the batch it was drawn in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from muselab.errors import ConfigError
from muselab.runtime import ddim
from muselab.runtime.model import OnnxModel

Progress = Callable[[int, int], None]


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"1,5,9"`` or ``"3"`` (and mixes such as ``"0-3,10"``) -> seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi) if hi else int(lo)
            if a < 0 or b < a:
                raise ValueError(part)
            seeds.extend(range(a, b + 1))
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: use e.g. 0-7, 1,5,9 or 3") from None
    if not seeds or len(seeds) > 10_000:
        raise ConfigError(f"--seeds {text!r}: between 1 and 10000 seeds")
    return seeds


def to_uint8(x: np.ndarray, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """[N, C, H, W] in [lo, hi] -> uint8 [N, H, W, C] (rounded, clipped)."""
    y = np.clip(np.rint((x - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


def label_ids(model: OnnxModel, n: int, label: str | None) -> np.ndarray | None:
    """Class ids [n] for ``label`` (or cycling through the classes); None if unconditional."""
    names = list(model.meta.get("class_names") or [])
    classes = int(model.meta.get("num_classes") or 0)
    if not classes:
        if label is not None:
            raise ConfigError(f"--class {label!r}: this model is not class-conditional")
        return None
    if label is None:
        return np.arange(n, dtype=np.int64) % classes
    if label not in names:
        raise ConfigError(f"--class {label!r} is not one of: {', '.join(names)}")
    return np.full(n, names.index(label), dtype=np.int64)


def generate(model: OnnxModel, seeds: list[int], *, label: str | None = None,
             embedding: np.ndarray | None = None, steps: int | None = None,
             guidance: float | None = None, eta: float = 0.0, batch: int = 8,
             progress: Progress | None = None) -> np.ndarray:
    """uint8 [N, H, W, C] images, one per seed, from a GAN, VAE or diffusion export.

    ``embedding`` [D] is a prompt's sentence embedding (text models; see ``prompts.npz``);
    text models without one sample unconditionally.
    """
    if model.kind not in ("gan", "vae", "diffusion"):
        raise ConfigError(f"{model.path} is a {model.kind} model: it does not sample from "
                          "seeds (muselab-run stylize / tokens)")
    if embedding is not None and model.meta.get("conditioning") != "text":
        raise ConfigError("--prompt/--embedding: this model is not text-conditional")
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    out = []
    labels = label_ids(model, len(seeds), label)
    for i in range(0, len(seeds), batch):
        chunk = seeds[i : i + batch]
        ids = None if labels is None else labels[i : i + len(chunk)]
        if model.kind == "diffusion":
            x = diffuse(model, chunk, ids, embedding, steps, guidance, eta, progress)
        else:
            z = _latents(model, chunk)[0]
            x = model.run("model", z=z, **({} if ids is None else {"labels": ids}))[0]
        out.append(to_uint8(x))
    return np.concatenate(out)


def _latents(model: OnnxModel, seeds: list[int]) -> tuple[np.ndarray, list[np.random.Generator]]:
    """One latent per seed from its own generator, and the generators (for DDIM noise)."""
    shape = tuple(model.meta["latent_shape"])
    rngs = [np.random.default_rng(s) for s in seeds]
    return np.stack([r.standard_normal(shape, dtype=np.float32) for r in rngs]), rngs


def diffuse(model: OnnxModel, seeds: list[int], labels: np.ndarray | None,
            embedding: np.ndarray | None, steps: int | None, guidance: float | None,
            eta: float = 0.0, progress: Progress | None = None) -> np.ndarray:
    """DDIM from each seed's noise (guided), decoded when latent: [N, C, H, W] in ~[-1, 1]."""
    meta = model.meta
    sched = ddim.Schedule(meta["schedule"]["alpha_bar"], meta["schedule"]["prediction"])
    x_t, rngs = _latents(model, seeds)
    n, scale = len(seeds), float(meta["guidance"] if guidance is None else guidance)
    if not 0.0 <= scale <= 50.0:
        raise ConfigError(f"--guidance must be in [0, 50], got {scale}")
    cond, null = _conditions(meta, n, labels, embedding)
    key = {"text": "cond", "class": "labels"}.get(meta["conditioning"])

    def net(x: np.ndarray, t: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        extra: dict[str, Any] = {} if key is None or c is None else {key: c}
        return model.run("model", x=x, t=t, **extra)[0]

    x0 = ddim.sample(ddim.guided(net, cond, null, scale), sched, x_t,
                     int(steps or meta["sample_steps"]), eta=eta, clip=bool(meta["clip"]),
                     rngs=rngs, progress=progress)
    if "decoder" in meta["graphs"]:
        x0 = model.run("decoder", latent=x0)[0]
    return x0


def _conditions(meta: dict[str, Any], n: int, labels: np.ndarray | None,
                embedding: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(condition rows, their unconditional rows) for the model's kind of conditioning."""
    if meta["conditioning"] == "class":
        assert labels is not None
        return labels, np.full(n, int(meta["null_label"]), dtype=np.int64)
    if meta["conditioning"] == "text":
        null = np.full((n, int(meta["cond_dim"])), np.nan, dtype=np.float32)
        if embedding is None:
            return null, None  # NaN rows: the model's learned "no prompt"
        emb = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if emb.shape != (int(meta["cond_dim"]),):
            raise ConfigError(f"prompt embedding has {emb.size} values; this model needs "
                              f"{meta['cond_dim']} (all-MiniLM-L6-v2)")
        return np.repeat(emb[None], n, axis=0), null
    return None, None


def prompt_embedding(model: OnnxModel, prompt: str) -> np.ndarray:
    """The embedding of ``prompt`` saved at export time (``muselab export --prompt``)."""
    name = model.meta.get("prompts")
    path = model.path.parent / str(name)
    if not name or not path.is_file():
        raise ConfigError(f"{model.path}: no prompt embeddings were exported; re-export with "
                          f'muselab export RUN --prompt "{prompt}", or pass --embedding FILE.npy')
    with np.load(path) as data:
        prompts = [str(p) for p in data["prompts"]]
        if prompt not in prompts:
            raise ConfigError(f"--prompt {prompt!r} was not exported (exported: "
                              f"{', '.join(map(repr, prompts))})")
        return np.asarray(data["embeddings"][prompts.index(prompt)], dtype=np.float32)


def stylize(model: OnnxModel, image: np.ndarray, graph: str = "model") -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W, 3] with a style or translation export."""
    if model.kind not in ("style", "translate"):
        raise ConfigError(f"{model.path} is a {model.kind} model, not an image-to-image one")
    meta = model.meta
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ConfigError(f"input image must be uint8 [H, W, 3], got {image.dtype} "
                          f"{list(image.shape)}")
    h, w = image.shape[:2]
    side = meta["resolution"] if meta.get("fixed_size") else None
    if side is not None and (h, w) != (side, side):
        raise ConfigError(f"this model translates {side}x{side} images, got {w}x{h}")
    m = int(meta["multiple"])
    padded = np.pad(image, ((0, (-h) % m), (0, (-w) % m), (0, 0)), mode="reflect")
    lo, hi = meta["input_range"]
    x = padded.transpose(2, 0, 1)[None].astype(np.float32) / 255.0 * (hi - lo) + lo
    y = model.run(graph, image=x.astype(np.float32))[0]  # [1, 3, H', W']
    return to_uint8(y, *meta["output_range"])[0, :h, :w]
