"""Computational aesthetics: hand-crafted image measures with published formulas.

Every measure takes ``uint8 [N, H, W, 3]`` RGB (or one ``[H, W, 3]`` image) and returns
``float64 [N]`` (or a float). All are vectorised over the batch except the compression
ratio, which runs the PNG encoder once per image. Formulas and citations are in
``docs/aesthetics.md``; the short version:

=================  ====================================================  =====================
name               formula                                               source
=================  ====================================================  =====================
colourfulness      sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)  Hasler & Suesstrunk 03
contrast           standard deviation of luma in [0, 1] (RMS contrast)   Peli 1990
sharpness          variance of the 4-neighbour Laplacian of luma         Pech-Pacheco 2000
harmony            1 - (deviation from best hue template) / (uniform)    Cohen-Or 2006, Matsuda
symmetry_lr/_tb    Pearson correlation of luma with its mirror image     den Heijer & Eiben 2012
complexity         PNG bytes / raw bytes                                 Machado et al. 2015
thirds             edge mass near the four rule-of-thirds points         Datta 2006, Mai 2011
brightness         mean luma in [0, 1]                                   Datta 2006 (f1)
saturation         mean HSV saturation                                   Datta 2006 (f2)
=================  ====================================================  =====================

>>> import numpy as np
>>> grey = np.full((1, 32, 32, 3), 128, np.uint8)
>>> float(colourfulness(grey)[0]), float(symmetry_lr(grey)[0])
(0.0, 1.0)
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from muselab.errors import ConfigError

Measure = Callable[[np.ndarray], np.ndarray]

#: Images per vectorised chunk: bounds memory at about 100 MB for 128 px images.
CHUNK = 256
#: ITU-R BT.601 luma weights (gamma-encoded R'G'B').
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class MeasureInfo:
    """A registered aesthetic measure."""

    name: str
    fn: Measure
    citation: str
    description: str


#: name -> measure, in registration (= table) order.
MEASURES: dict[str, MeasureInfo] = {}


def measure(name: str, citation: str, description: str) -> Callable[[Measure], Measure]:
    """Register a batch measure ``uint8 [N, H, W, 3] -> float64 [N]`` under ``name``."""

    def wrap(fn: Measure) -> Measure:
        @functools.wraps(fn)
        def checked(images: np.ndarray) -> np.ndarray:
            batch = as_batch(images)
            parts = [fn(batch[i : i + CHUNK]) for i in range(0, len(batch), CHUNK)]
            return np.concatenate(parts) if parts else np.zeros(0)

        MEASURES[name] = MeasureInfo(name, checked, citation, description)
        return checked

    return wrap


def as_batch(images: np.ndarray) -> np.ndarray:
    """Check ``uint8 [N, H, W, 3]`` (or one ``[H, W, 3]`` image) and return a batch."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ConfigError(
            f"aesthetic measures need uint8 RGB images [N, H, W, 3], got {arr.dtype} "
            f"{tuple(arr.shape)}"
        )
    if arr.shape[1] < 3 or arr.shape[2] < 3:
        raise ConfigError(f"images must be at least 3x3 pixels, got {arr.shape[1]}x{arr.shape[2]}")
    return arr


def _luma(batch: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float64 [N, H, W] luma in [0, 1]."""
    return (batch.astype(np.float64) @ LUMA) / 255.0


def _hue_chroma(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HSV hue in degrees [0, 360), chroma (max - min) and saturation, all [N, H, W].

    Chroma and saturation are in [0, 1]. float32 is plenty for 1-degree hue bins.
    """
    rgb = batch.astype(np.float32) / np.float32(255.0)  # [N, H, W, 3]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = mx - mn
    inv = np.float32(1.0) / np.maximum(chroma, np.float32(1e-12))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # The sector of the largest channel (R first on ties, as the usual formula does).
    sector = np.where(mx == r, 0, np.where(mx == g, 1, 2))
    num = np.choose(sector, (g - b, b - r, r - g))
    hue = ((num * inv + 2.0 * sector) * 60.0) % 360.0
    hue[chroma <= 0] = 0.0
    saturation = chroma / np.maximum(mx, np.float32(1e-12))
    return hue, chroma, saturation


@measure("colourfulness", "Hasler & Suesstrunk 2003",
         "opponent-colour spread + 0.3 * mean; 0 for greys, ~100+ very colourful (0-255 units)")
def colourfulness(images: np.ndarray) -> np.ndarray:
    """Hasler & Suesstrunk (2003) colourfulness M on 0-255 RGB: rg = R - G, yb = (R+G)/2 - B."""
    rgb = images.astype(np.float64)
    rg = (rgb[..., 0] - rgb[..., 1]).reshape(len(rgb), -1)  # [N, HW]
    yb = (0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]).reshape(len(rgb), -1)
    spread = np.sqrt(rg.var(axis=1) + yb.var(axis=1))
    mean = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    return spread + 0.3 * mean


@measure("contrast", "Peli 1990", "RMS contrast: standard deviation of luma in [0, 1]")
def contrast(images: np.ndarray) -> np.ndarray:
    """RMS contrast (Peli 1990): the standard deviation of luma scaled to [0, 1]."""
    return _luma(images).reshape(len(images), -1).std(axis=1)


@measure("sharpness", "Pech-Pacheco et al. 2000",
         "variance of the Laplacian of luma; higher = more fine detail / less blur")
def sharpness(images: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian of luma in [0, 1], over interior pixels."""
    y = _luma(images)  # [N, H, W]
    lap = (y[:, :-2, 1:-1] + y[:, 2:, 1:-1] + y[:, 1:-1, :-2] + y[:, 1:-1, 2:]
           - 4.0 * y[:, 1:-1, 1:-1])  # [N, H-2, W-2]
    return lap.reshape(len(images), -1).var(axis=1)


# Matsuda's hue templates as used by Cohen-Or et al. (2006): (centre offset, arc width) in
# degrees per sector. The "N" (greyscale) template is not a hue template and is left out.
TEMPLATES: dict[str, tuple[tuple[float, float], ...]] = {
    "i": ((0.0, 18.0),),
    "V": ((0.0, 93.6),),
    "L": ((0.0, 18.0), (90.0, 79.2)),
    "I": ((0.0, 18.0), (180.0, 18.0)),
    "T": ((0.0, 180.0),),
    "Y": ((0.0, 93.6), (180.0, 18.0)),
    "X": ((0.0, 93.6), (180.0, 93.6)),
}


def _arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest angular distance in degrees between hues ``a`` and ``b`` (broadcast)."""
    d = np.abs(a - b) % 360.0
    return np.minimum(d, 360.0 - d)


@functools.cache
def template_distances() -> np.ndarray:
    """float64 [T, 360 rotations, 360 hue bins]: arc distance of each 1-degree hue bin
    (at its centre) to the nearest sector of each template rotated by each whole degree."""
    hues = np.arange(360) + 0.5  # [360]
    rot = np.arange(360.0)[:, None]  # [360, 1]
    out = np.empty((len(TEMPLATES), 360, 360))
    for t, sectors in enumerate(TEMPLATES.values()):
        dists = [np.maximum(_arc(hues[None, :], rot + c) - w / 2.0, 0.0) for c, w in sectors]
        out[t] = np.minimum.reduce(dists)
    return out


def hue_histogram(images: np.ndarray) -> np.ndarray:
    """float64 [N, 360]: chroma-weighted histogram of HSV hue in 1-degree bins."""
    hue, chroma, _ = _hue_chroma(images)
    n = len(images)
    bins = np.minimum(hue.astype(np.int64), 359).reshape(n, -1)
    idx = (bins + 360 * np.arange(n)[:, None]).ravel()
    weights = chroma.reshape(n, -1).ravel()
    return np.bincount(idx, weights=weights, minlength=360 * n).reshape(n, 360)


def template_deviation(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best template fit per histogram: (mean deviation in degrees, template index, rotation).

    Cohen-Or et al.'s F(X, (m, alpha)) = sum_p ||H(p) - E(p)|| S(p), normalised by the
    total weight so it is a weighted mean arc distance; minimised over m and alpha.
    """
    total = hist.sum(axis=1)  # [N]
    table = template_distances().reshape(-1, 360)  # [T * 360, 360]
    flat = hist @ table.T  # [N, T * 360]: the cost of every template and rotation
    best = flat.argmin(axis=1)
    dev = flat[np.arange(len(hist)), best] / np.where(total > 0, total, 1.0)
    return np.where(total > 0, dev, 0.0), best // 360, best % 360


@functools.cache
def uniform_deviation() -> float:
    """Best-template deviation of a uniform hue wheel (about 10.4 degrees, template X)."""
    return float(template_deviation(np.ones((1, 360)))[0][0])


@measure("harmony", "Cohen-Or et al. 2006 (Matsuda 1995 templates)",
         "hue-template fit: 1 = all hues inside one template, 0 = as spread as a uniform wheel")
def harmony(images: np.ndarray) -> np.ndarray:
    """1 - (chroma-weighted deviation from the best-fitting hue template) / (that of a
    uniform hue wheel), clipped to [0, 1]. Achromatic images score 1."""
    dev, _, _ = template_deviation(hue_histogram(images))
    return np.clip(1.0 - dev / uniform_deviation(), 0.0, 1.0)


def _mirror_correlation(y: np.ndarray, axis: int) -> np.ndarray:
    """Pearson correlation of each luma image [N, H, W] with its mirror along ``axis``."""
    n = len(y)
    a = y.reshape(n, -1)
    b = np.flip(y, axis=axis).reshape(n, -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    var = (a * a).mean(axis=1)  # the mirror has the same variance
    cov = (a * b).mean(axis=1)
    flat = var <= 1e-12
    return np.where(flat, 1.0, np.clip(cov / np.where(flat, 1.0, var), -1.0, 1.0))


@measure("symmetry_lr", "den Heijer & Eiben 2012",
         "left-right mirror correlation of luma in [-1, 1]; 1 = mirror-symmetric")
def symmetry_lr(images: np.ndarray) -> np.ndarray:
    """Left-right symmetry: correlation of luma with its horizontal mirror."""
    return _mirror_correlation(_luma(images), axis=2)


@measure("symmetry_tb", "den Heijer & Eiben 2012",
         "top-bottom mirror correlation of luma in [-1, 1]; 1 = mirror-symmetric")
def symmetry_tb(images: np.ndarray) -> np.ndarray:
    """Top-bottom symmetry: correlation of luma with its vertical mirror."""
    return _mirror_correlation(_luma(images), axis=1)


def png_ratio(image: np.ndarray) -> float:
    """PNG size (zlib level 6, Pillow's adaptive filters) / raw RGB size of one image."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.tell() / image.size


@measure("complexity", "Machado et al. 2015",
         "PNG compression ratio: ~0 flat, ~1 white noise (visual complexity)")
def complexity(images: np.ndarray) -> np.ndarray:
    """Visual complexity as the lossless (PNG) compression ratio; can exceed 1 slightly
    for incompressible noise because of the PNG headers."""
    return np.array([png_ratio(np.ascontiguousarray(img)) for img in images])


#: The four rule-of-thirds "power points" in normalised (y, x) and the Gaussian width.
POWER_POINTS = np.array([[1, 1], [1, 2], [2, 1], [2, 2]]) / 3.0
THIRDS_SIGMA = 1.0 / 12.0


@functools.cache
def thirds_weights(h: int, w: int) -> np.ndarray:
    """float64 [H, W]: max over power points of exp(-d^2 / (2 sigma^2)), d in image units."""
    ys = (np.arange(h) + 0.5) / h
    xs = (np.arange(w) + 0.5) / w
    d2 = ((ys[None, :, None] - POWER_POINTS[:, 0, None, None]) ** 2
          + (xs[None, None, :] - POWER_POINTS[:, 1, None, None]) ** 2)  # [4, H, W]
    return np.exp(-d2 / (2 * THIRDS_SIGMA**2)).max(axis=0)


@measure("thirds", "Datta et al. 2006; Mai et al. 2011",
         "share of edge energy near the rule-of-thirds points, in [0, 1]")
def thirds(images: np.ndarray) -> np.ndarray:
    """Rule of thirds: sum(s * w) / sum(s) with s the luma gradient magnitude (an edge
    saliency map) and w the power-point weight map. A flat image (no edges) gets the
    uniform baseline mean(w), about 0.2."""
    y = _luma(images)
    gy, gx = np.gradient(y, axis=(1, 2))
    s = np.sqrt(gx * gx + gy * gy).reshape(len(y), -1)  # [N, HW]
    wmap = thirds_weights(y.shape[1], y.shape[2]).ravel()  # [HW]
    total = s.sum(axis=1)
    return np.where(total > 1e-12, (s @ wmap) / np.where(total > 1e-12, total, 1.0), wmap.mean())


@measure("brightness", "Datta et al. 2006 (f1)", "mean luma in [0, 1]")
def brightness(images: np.ndarray) -> np.ndarray:
    """Mean luma in [0, 1]."""
    return _luma(images).reshape(len(images), -1).mean(axis=1)


@measure("saturation", "Datta et al. 2006 (f2)", "mean HSV saturation in [0, 1]")
def saturation(images: np.ndarray) -> np.ndarray:
    """Mean HSV saturation (chroma / value) in [0, 1]."""
    mx = images.max(axis=-1).astype(np.float32)  # [N, H, W]
    chroma = mx - images.min(axis=-1)
    sat = chroma / np.maximum(mx, np.float32(1e-12))
    return sat.reshape(len(images), -1).mean(axis=1, dtype=np.float64)


def measure_names() -> list[str]:
    """Registered measure names, in table order."""
    return list(MEASURES)


def aesthetic_scores(images: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every (or the named) measure of ``images``: name -> float64 [N]."""
    names = names or measure_names()
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ConfigError(f"unknown aesthetic measure {unknown[0]!r} (known: "
                          f"{', '.join(MEASURES)})")
    batch = as_batch(images)
    return {name: MEASURES[name].fn(batch) for name in names}


def aesthetic_matrix(images: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """float64 [N, F] with one column per measure (``names`` order, default all)."""
    scores = aesthetic_scores(images, names)
    return np.stack(list(scores.values()), axis=1)
