"""Interpretable features of images and music, the vocabulary the two modalities share.

Image features (all from the sRGB pixels, CIE 1976 L*a*b* via scikit-image):

* ``lightness``: mean L* / 100 in [0, 1];
* ``saturation``: mean chroma sqrt(a*^2 + b*^2) / 100 (CIELab chroma, about [0, 1.3]);
* ``yellow_blue``: mean b* / 100, the yellow (+) - blue (-) opponent axis;
* ``hue``: the chroma-weighted circular mean of the CIELab hue angle in degrees (None
  when the image has no colour: then hue carries no information);
* ``contrast``: RMS contrast, the standard deviation of L* / 100 (Peli 1990);
* ``edge_density``: share of pixels whose Sobel gradient magnitude of L* exceeds 0.1
  (on a 0-1 scale), a common clutter / visual-complexity measure (Rosenholtz et al. 2007);
* ``symmetry``: 1 - mean |L*(x) - L*(mirror x)| / 100 over the left-right mirror.

Lightness, saturation and yellow-blue are the three colour dimensions Palmer et al. (2013,
PNAS 110(22) 8836-8841) found to carry colour-music associations; see
:mod:`muselab.crossmodal.image2music`.

Music features of a :class:`~muselab.music.tokens.Piece`: key and mode (from the header,
or Krumhansl-Schmuckler analysis when ``analyse=True``), tempo (BPM), density (notes per
beat), register (mean MIDI pitch), pitch range and loudness (mean MIDI velocity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.music.tokens import TPQ, Piece

#: Chroma (CIELab, 0-100 scale) below which a pixel counts as grey for the hue average.
GREY_CHROMA = 5.0
#: Sobel magnitude (L* scaled to 0-1) above which a pixel counts as an edge.
EDGE_THRESHOLD = 0.1


@dataclass(frozen=True)
class ImageFeatures:
    """Colour and composition features of one image (see the module docstring)."""

    lightness: float
    saturation: float
    yellow_blue: float
    hue: float | None  # degrees, CIELab hue angle; None for an achromatic image
    contrast: float
    edge_density: float
    symmetry: float
    height: int
    width: int

    @property
    def achromatic(self) -> bool:
        """True when (almost) no pixel has colour: hue and yellow-blue say nothing."""
        return self.hue is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "achromatic": self.achromatic}


@dataclass(frozen=True)
class MusicFeatures:
    """Analysed features of one piece."""

    key: str  # e.g. "D minor"
    mode: str  # "major" or "minor"
    tempo: float  # BPM
    density: float  # notes per beat (quarter note)
    register: float  # mean MIDI pitch
    pitch_range: int  # highest - lowest MIDI pitch
    loudness: float  # mean MIDI velocity (1-127)
    style: str
    bars: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_rgb(img: np.ndarray, what: str = "image") -> np.ndarray:
    """``img`` as ``uint8 [H, W, 3]``: grey [H, W] is repeated, RGBA is composited on white.

    Anything else (empty, wrong dtype or shape) raises :class:`DataError` naming ``what``.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise DataError(f"{what}: expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"{what}: expected an [H, W, 3] RGB image, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{what}: the image is empty ({arr.shape[0]}x{arr.shape[1]} pixels)")
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:].astype(np.float32) / 255.0  # [H, W, 1]
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        arr = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return arr


def image_features(img: np.ndarray) -> ImageFeatures:
    """:class:`ImageFeatures` of ``uint8 [H, W, 3]`` (grey and RGBA accepted, see :func:`as_rgb`).

    Documented fallbacks, never a crash: an image without colour (e.g. pure black) gets
    ``hue=None`` and saturation 0; a 1-pixel (or 1-pixel-wide) image has contrast 0,
    no edges and symmetry 1.
    """
    from skimage.color import rgb2lab

    rgb = as_rgb(img)
    lab = rgb2lab(rgb.astype(np.float64) / 255.0)  # [H, W, 3]: L* 0-100, a*, b*
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)  # [H, W]
    return ImageFeatures(
        lightness=float(L.mean() / 100.0),
        saturation=float(chroma.mean() / 100.0),
        yellow_blue=float(b.mean() / 100.0),
        hue=_mean_hue(a, b, chroma),
        contrast=float(L.std() / 100.0),
        edge_density=_edge_density(L / 100.0),
        symmetry=float(1.0 - np.abs(L - L[:, ::-1]).mean() / 100.0),
        height=int(rgb.shape[0]),
        width=int(rgb.shape[1]),
    )


def _mean_hue(a: np.ndarray, b: np.ndarray, chroma: np.ndarray) -> float | None:
    """Chroma-weighted circular mean of the CIELab hue angle (degrees), None if all grey."""
    weight = np.where(chroma >= GREY_CHROMA, chroma, 0.0)
    if weight.sum() <= 0:
        return None
    angle = np.arctan2(b, a)  # [H, W] radians
    x, y = (weight * np.cos(angle)).sum(), (weight * np.sin(angle)).sum()
    return float(np.degrees(np.arctan2(y, x)) % 360.0)


def _edge_density(lightness: np.ndarray) -> float:
    """Share of pixels with Sobel magnitude above :data:`EDGE_THRESHOLD` (0 below 3x3)."""
    from skimage.filters import sobel

    if min(lightness.shape) < 3:
        return 0.0
    return float((sobel(lightness) > EDGE_THRESHOLD).mean())


def music_features(piece: Piece, *, analyse: bool = False) -> MusicFeatures:
    """:class:`MusicFeatures` of ``piece``; ``analyse`` re-estimates the key from the notes.

    A piece without notes raises :class:`DataError`.
    """
    if not piece.notes:
        raise DataError("a piece without notes has no music features")
    key = piece.key
    if analyse:
        from muselab.music.metrics import estimate_key

        key = estimate_key([n.pitch for n in piece.notes], [n.duration for n in piece.notes])
    pitches = np.array([n.pitch for n in piece.notes])  # [N]
    end = max(n.start + n.duration for n in piece.notes)
    beats = max(piece.bars() * piece.bar_ticks, end) / TPQ
    return MusicFeatures(
        key=str(key), mode="minor" if key.minor else "major", tempo=float(piece.tempo),
        density=float(len(piece.notes) / max(beats, 1e-9)), register=float(pitches.mean()),
        pitch_range=int(pitches.max() - pitches.min()),
        loudness=float(np.mean([n.velocity for n in piece.notes])), style=piece.style,
        bars=int(piece.bars()))
