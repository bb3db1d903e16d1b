"""What every style method shares: reading images, blending, colour preservation, masks.

Images are ``uint8 [H, W, 3]`` RGB arrays at the edges and ``float32 [H, W, 3]`` in
``[0, 1]`` inside. Greyscale, palette, 16-bit, CMYK and transparent inputs are converted
to RGB (transparency composited on white), never rejected. Files that are not images,
images smaller than :data:`MIN_SIDE` and decompression bombs (Pillow's pixel limit) raise a
:class:`~muselab.errors.DataError` naming the file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from muselab.errors import ConfigError, DataError

#: Both sides of every content, style or mask image must be at least this many pixels.
MIN_SIDE = 16

ImageLike = str | os.PathLike[str] | np.ndarray
ColorMode = Literal["none", "luminance", "histogram"]
COLOR_MODES: tuple[str, ...] = ("none", "luminance", "histogram")


def read_image(source: ImageLike, what: str = "image") -> np.ndarray:
    """``source`` (a path or a uint8 array) as ``uint8 [H, W, 3]`` RGB; ``what`` names it."""
    if isinstance(source, np.ndarray):
        return _check_array(source, what)
    from muselab.data.imagefolder import describe_failure, to_rgb

    path = Path(source)
    if not path.is_file():
        raise DataError(f"{what} {path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                rgb = to_rgb(ImageOps.exif_transpose(img), (255, 255, 255))
    except Exception as exc:  # Pillow raises many types for corrupt data
        fmt = path.suffix.lstrip(".").upper() or "file"
        raise DataError(f"{what} {path}: {describe_failure(exc, fmt)}") from None
    return _check_array(np.asarray(rgb, dtype=np.uint8), f"{what} {path}")


def _check_array(img: np.ndarray, what: str) -> np.ndarray:
    if img.dtype != np.uint8:
        raise DataError(f"{what}: expected a uint8 image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise DataError(f"{what}: expected [H, W, 3] pixels, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:  # composite on white
        a = img[:, :, 3:].astype(np.float32) / 255.0
        img = np.rint(img[:, :, :3] * a + 255.0 * (1 - a)).astype(np.uint8)
    h, w = img.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{what}: {w}x{h} is too small; both sides need at least {MIN_SIDE} px")
    return np.ascontiguousarray(img)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> float32 [H, W, C] in [0, 1]."""
    return img.astype(np.float32) / 255.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [H, W, C] in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased (Lanczos) resize of uint8 [H, W, C] or float [H, W, C] to ``size`` = (w, h)."""
    if (img.shape[1], img.shape[0]) == size:
        return img
    if img.dtype == np.uint8:
        return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
    chans = [np.asarray(Image.fromarray(img[:, :, c].astype(np.float32), "F")
                        .resize(size, Image.Resampling.LANCZOS)) for c in range(img.shape[2])]
    return np.stack(chans, axis=2).astype(np.float32)


def fit_long_side(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink ``img`` so its longer side is at most ``max_side`` (never enlarges)."""
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    return resize(img, (max(MIN_SIDE, round(w * s)), max(MIN_SIDE, round(h * s))))


def blend(content: np.ndarray, stylized: np.ndarray, alpha: float) -> np.ndarray:
    """The seed's blend on pixels: ``alpha * content + (1 - alpha) * stylized`` (floats)."""
    return alpha * content + (1.0 - alpha) * stylized


def check_alpha(alpha: float, name: str = "--alpha") -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"{name} must be between 0 and 1 (1 keeps the content), got {alpha}")
    return float(alpha)


def style_weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    """Normalised non-negative weights for ``n`` styles (equal when ``weights`` is None)."""
    if weights is None or len(weights) == 0:
        return np.full(n, 1.0 / n, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float32)
    if len(w) != n:
        raise ConfigError(f"--weights: {len(w)} weights for {n} style images")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ConfigError(f"--weights must be non-negative, finite and not all zero, got {list(w)}")
    return w / w.sum()


# -- colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving color") -------

_RGB2YUV = np.array([[0.299, 0.587, 0.114],  # BT.601 luma and colour differences
                     [-0.14713, -0.28886, 0.436],
                     [0.615, -0.51499, -0.10001]], dtype=np.float32)
_YUV2RGB = np.linalg.inv(_RGB2YUV).astype(np.float32)


def luminance_only(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance-only transfer: the stylized image's luma with the content's chroma.

    Both float [H, W, 3] in [0, 1] of the same size.
    """
    y = stylized @ _RGB2YUV.T  # [H, W, 3] YUV
    c = content @ _RGB2YUV.T
    out = np.concatenate([y[:, :, :1], c[:, :, 1:]], axis=2) @ _YUV2RGB.T
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def match_colours(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Linear colour transfer: ``source``'s pixels moved to ``target``'s mean and covariance.

    The "colour histogram matching" option of Gatys et al. 2016 (applied to the style image
    before stylizing): ``x' = A (x - mu_s) + mu_t`` with ``A = C_t^(1/2) C_s^(-1/2)``
    (symmetric square roots). Float [H, W, 3] in [0, 1] in, same shape out.
    """
    xs = source.reshape(-1, 3).astype(np.float64)  # [Ns, 3]
    xt = target.reshape(-1, 3).astype(np.float64)  # [Nt, 3]
    mu_s, mu_t = xs.mean(0), xt.mean(0)
    eye = 1e-5 * np.eye(3)
    a = _sqrtm(np.cov(xt.T) + eye) @ np.linalg.inv(_sqrtm(np.cov(xs.T) + eye))  # [3, 3]
    out = (xs - mu_s) @ a.T + mu_t
    return np.clip(out, 0.0, 1.0).reshape(source.shape).astype(np.float32)


def _sqrtm(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    return np.asarray((vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T)


def check_color(mode: str) -> ColorMode:
    if mode not in COLOR_MODES:
        raise ConfigError(f"--preserve-color must be one of {', '.join(COLOR_MODES)}, got {mode!r}")
    return mode  # type: ignore[return-value]


# -- masks ---------------------------------------------------------------------------------


def read_mask(source: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """A soft mask float32 [H, W] in [0, 1] resized to ``size`` = (w, h): white = stylize."""
    img = read_image(source, "mask")
    grey = img.astype(np.float32).mean(axis=2, keepdims=True) / 255.0  # [h, w, 1]
    return resize(grey, size)[:, :, 0].clip(0.0, 1.0)


def apply_mask(content: np.ndarray, stylized: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``mask * stylized + (1 - mask) * content``; outside the mask the content is unchanged."""
    if mask is None:
        return stylized
    m = mask[:, :, None]
    return m * stylized + (1.0 - m) * content


def finish(content: np.ndarray, stylized: np.ndarray, *, alpha: float, color: ColorMode,
           mask: ImageLike | None) -> np.ndarray:
    """The steps every method ends with: colour, pixel blend, mask. Floats in, uint8 out."""
    if color == "luminance":
        stylized = luminance_only(stylized, content)
    out = blend(content, stylized, alpha)
    if mask is not None:
        out = apply_mask(content, out, read_mask(mask, (content.shape[1], content.shape[0])))
    return to_uint8(out)


# -- animation -----------------------------------------------------------------------------


def read_gif(path: str | os.PathLike[str], max_frames: int = 300) -> list[np.ndarray]:
    """The frames of an animated image as uint8 [H, W, 3] RGB (composited on white)."""
    from muselab.data.imagefolder import to_rgb

    p = Path(path)
    if not p.is_file():
        raise DataError(f"animation {p}: no such file")
    frames: list[np.ndarray] = []
    try:
        with Image.open(p) as im:
            for i in range(getattr(im, "n_frames", 1)):
                if i >= max_frames:
                    break
                im.seek(i)
                frames.append(np.asarray(to_rgb(im.convert("RGBA"), (255, 255, 255))))
    except Exception as exc:
        raise DataError(f"animation {p}: cannot read frames: {exc}") from None
    return [_check_array(f, f"animation {p}") for f in frames]


def smooth_frames(frames: Sequence[np.ndarray], strength: float,
                  content: Sequence[np.ndarray] | None = None,
                  tau: float = 0.05) -> list[np.ndarray]:
    """Temporal smoothing against flicker: ``y_t = s_t * y_{t-1} + (1 - s_t) * x_t``.

    An exponential moving average over the stylized frames ``x_t`` (uint8 in, uint8 out).
    With the ``content`` frames, ``s_t`` is lowered where the content moves,
    ``s_t = strength * exp(-|c_t - c_{t-1}| / tau)`` per pixel, so moving parts do not
    leave trails (a cheap stand-in for the optical-flow warping of Ruder et al. 2016).
    ``strength`` 0 leaves the frames unchanged.
    """
    check_alpha(strength, "--smooth")
    out: list[np.ndarray] = []
    prev: np.ndarray | None = None
    for t, f in enumerate(frames):
        x = to_float(f)
        if prev is None:
            prev = x
        else:
            s: float | np.ndarray = strength
            if content is not None:
                a, b = to_float(content[t]), to_float(content[t - 1])
                if a.shape == x.shape and b.shape == x.shape:
                    moved = np.abs(a - b).mean(axis=2, keepdims=True)  # [H, W, 1]
                    s = strength * np.exp(-moved / tau)
            prev = s * prev + (1.0 - s) * x
        out.append(to_uint8(prev))
    return out


def frame_change(frames: Sequence[np.ndarray]) -> float:
    """Mean absolute frame-to-frame change in [0, 255] units (flicker measure)."""
    if len(frames) < 2:
        return 0.0
    diffs = [np.abs(a.astype(np.float32) - b.astype(np.float32)).mean()
             for a, b in zip(frames[:-1], frames[1:], strict=True)]
    return float(np.mean(diffs))
