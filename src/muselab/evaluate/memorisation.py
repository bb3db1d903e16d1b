"""Did the model copy its training set? Nearest training images of every generated image.

For each generated image g we find its nearest training image in two spaces: raw pixels
at full resolution (values in [0, 1]) and the chosen feature space. Distances alone
mean little (how far apart are training images anyway?), so each is divided by a scale
of the training set itself: the median over training images t of the distance from t
to its nearest *other* training image. The copy ratio

    ratio(g) = d(g, NN_train(g)) / median_t d(t, NN_train\\{t}(t))

is 0 for an exact copy and around 1 for an image as close to the training set as
training images are to each other (in the spirit of the "authenticity" test of Alaa et
al. 2022 and the memorisation ratio of Meehan et al. 2020). An image is flagged as a
possible copy when its ratio is under ``threshold`` in *either* space. A contact sheet
shows the closest pairs side by side for a human to judge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from muselab.errors import ConfigError, DataError
from muselab.evaluate.features import FeatureExtractor, cached_extract, extract
from muselab.evaluate.stats import pairwise_distances

DEFAULT_THRESHOLD = 0.2
"""Held-out real emoji (32 px) fall under 0.2 in ~2 % of cases, under 0.5 in ~20 % (skin-tone
and gender variants are near-duplicates): see docs/evaluation.md."""
_CHUNK = 256  # query rows per distance block


@dataclass
class Match:
    """A generated image and its nearest training images."""

    index: int  # into the generated set
    pixel_train: int  # nearest training image in pixel space
    pixel_distance: float
    pixel_ratio: float
    feature_train: int  # nearest training image in feature space
    feature_distance: float
    feature_ratio: float
    flagged: bool

    @property
    def ratio(self) -> float:
        """The smaller of the two ratios (what the flag is decided on)."""
        return min(self.pixel_ratio, self.feature_ratio)


@dataclass
class CopyReport:
    """All matches, the training-set scales, and what was flagged."""

    matches: list[Match]
    threshold: float
    pixel_scale: float  # median train-to-train NN distance, pixels
    feature_scale: float  # the same in feature space
    features: str
    n_generated: int
    n_train: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> list[Match]:
        return [m for m in self.matches if m.flagged]

    def closest(self, k: int) -> list[Match]:
        """The ``k`` matches with the smallest ratio."""
        return sorted(self.matches, key=lambda m: m.ratio)[:k]

    def to_dict(self) -> dict[str, Any]:
        ratios = np.array([m.ratio for m in self.matches])
        return {
            "threshold": self.threshold, "features": self.features,
            "n_generated": self.n_generated, "n_train": self.n_train,
            "pixel_scale": self.pixel_scale, "feature_scale": self.feature_scale,
            "flagged": len(self.flagged), "flagged_fraction": len(self.flagged) / len(ratios),
            "ratio_quantiles": {q: float(np.quantile(ratios, float(q)))
                                for q in ("0.01", "0.05", "0.5")},
            **self.extra, "matches": [asdict(m) for m in self.matches],
        }


def nearest(query: np.ndarray, base: np.ndarray, exclude_self: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest row of ``base`` [B, D] for each row of ``query`` [Q, D]: (distances [Q],
    indices [Q]). ``exclude_self``: query is base, and a row is not its own neighbour."""
    dist, idx = np.empty(len(query)), np.empty(len(query), np.int64)
    for start in range(0, len(query), _CHUNK):
        d = pairwise_distances(query[start : start + _CHUNK], base)  # [q, B]
        if exclude_self:
            rows = np.arange(d.shape[0])
            d[rows, start + rows] = np.inf
        idx[start : start + len(d)] = d.argmin(1)
        dist[start : start + len(d)] = d[np.arange(len(d)), idx[start : start + len(d)]]
    return dist, idx


def train_scale(train: np.ndarray) -> float:
    """Median distance from a training point to its nearest other training point."""
    dist, _ = nearest(train, train, exclude_self=True)
    scale = float(np.median(dist))
    if scale <= 0:  # over half the set are exact duplicates: fall back to the mean
        scale = float(dist.mean())
    return scale if scale > 0 else 1.0


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, H * W * 3] in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def find_copies(
    generated: np.ndarray,
    train: np.ndarray,
    extractor: FeatureExtractor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    progress: bool = False,
) -> CopyReport:
    """Nearest training image of each generated image in pixel and feature space, the
    copy ratios, and the images flagged under ``threshold`` (see the module doc)."""
    if not 0.0 < threshold:
        raise ConfigError(f"--threshold must be > 0; got {threshold}")
    if len(generated) < 1 or len(train) < 2:
        raise DataError(f"the copy check needs at least 1 generated and 2 training images; "
                        f"got {len(generated)} and {len(train)}")
    if generated.shape[1:] != train.shape[1:]:
        raise DataError(f"generated {list(generated.shape[1:])} and training "
                        f"{list(train.shape[1:])} images differ in size")
    spaces = {
        "pixel": (pixel_vectors(generated), pixel_vectors(train)),
        "feature": (extract(extractor, generated, progress=progress, what="generated"),
                    cached_extract(extractor, train, progress=progress, what="training")),
    }
    found: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    for space, (g, t) in spaces.items():
        dist, idx = nearest(g, t)
        found[space] = (dist, idx, train_scale(t))
    (pd, pi, ps), (fd, fi, fs) = found["pixel"], found["feature"]
    matches = []
    for i in range(len(generated)):
        pr, fr = float(pd[i] / ps), float(fd[i] / fs)
        matches.append(Match(i, int(pi[i]), float(pd[i]), pr, int(fi[i]), float(fd[i]), fr,
                             min(pr, fr) < threshold))
    return CopyReport(matches, threshold, ps, fs, extractor.name, len(generated), len(train))


def _upscale(image: np.ndarray, scale: int) -> Image.Image:
    return Image.fromarray(image).resize(
        (image.shape[1] * scale, image.shape[0] * scale), Image.Resampling.NEAREST)


def contact_sheet(
    report: CopyReport, generated: np.ndarray, train: np.ndarray, *, top: int = 16,
    columns: int = 4, scale: int | None = None,
) -> np.ndarray:
    """The ``top`` closest pairs as uint8 [H, W, 3]: per cell, the generated image, its
    nearest training image in pixel space and in feature space, and a caption with the
    ratios (red when flagged)."""
    pairs = report.closest(top)
    res = generated.shape[1]
    scale = scale or max(1, 64 // res)
    side = res * scale
    cap = 12
    cell_w, cell_h = 3 * side + 8, side + cap + 6
    rows = (len(pairs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w + 4, max(rows, 1) * cell_h + 4), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, m in enumerate(pairs):
        x0, y0 = 4 + (k % columns) * cell_w, 4 + (k // columns) * cell_h
        for j, img in enumerate((generated[m.index], train[m.pixel_train],
                                 train[m.feature_train])):
            sheet.paste(_upscale(img, scale), (x0 + j * side, y0))
        colour = (200, 0, 0) if m.flagged else (60, 60, 60)
        draw.text((x0, y0 + side + 1), f"#{m.index} px {m.pixel_ratio:.2f} "
                  f"ft {m.feature_ratio:.2f}", fill=colour)
    return np.asarray(sheet)
