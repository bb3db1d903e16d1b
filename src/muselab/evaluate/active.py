"""The machinery behind the value model (:mod:`muselab.evaluate.value`).

* :class:`Featurizer` and :class:`FeatureSpace`: images -> model inputs (aesthetic
  measures z-scored over a pool, ``|z(complexity)|``, whitened PCA of pooled backbone
  features from :func:`muselab.evaluate.features.get_extractor`);
* :func:`fit_map`: multinomial logistic regression as a MAP estimate under a Gaussian
  prior centred on prior weights ``W0`` (L-BFGS, analytic gradient);
  :func:`fit_temperature`: temperature scaling (Guo et al. 2017, "On Calibration of
  Modern Neural Networks").
* :func:`next_to_rate` is uncertainty sampling (Lewis & Gale 1994; Settles 2009,
  "Active Learning Literature Survey", section 3.1): rate the images whose predicted
  class distribution has the highest entropy, optionally with a share of random picks
  (epsilon-greedy exploration) so the model also sees images it is sure about.
* :func:`stratified_folds`, :func:`spearman` and :func:`expected_calibration_error`
  (Naeini et al. 2015; Guo et al. 2017) are what the value model reports on its
  out-of-fold predictions as ratings accumulate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import spearmanr

from muselab.errors import ConfigError, DataError, MuselabError
from muselab.evaluate.aesthetics import aesthetic_matrix, measure_names

#: The backbone ``backbone="auto"`` uses when it is available (small and fast on a CPU).
AUTO_BACKBONE = "mobilenet-v2"


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of each row of ``probs`` [N, C] -> [N]."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def margin(probs: np.ndarray) -> np.ndarray:
    """Best minus second-best probability per row (small = uncertain) -> [N]."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def next_to_rate(probs: np.ndarray, k: int = 1, *, exclude: np.ndarray | None = None,
                 explore: float = 0.0, seed: int = 0) -> np.ndarray:
    """Indices of up to ``k`` images to rate next, most informative first.

    ``probs`` is float [N, C] (the value model's class probabilities); ``exclude`` a bool
    mask [N] of images not to propose (already rated). With ``explore`` > 0 that share of
    the picks (rounded, at least one when ``k`` > 1 and explore > 0) is drawn uniformly
    at random from the rest (seeded). Ties in entropy go to the lower index.
    """
    if not 0.0 <= explore <= 1.0:
        raise ConfigError(f"explore must be in [0, 1], got {explore}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    n = len(probs)
    allowed = np.ones(n, bool) if exclude is None else ~np.asarray(exclude, bool)
    candidates = np.flatnonzero(allowed)
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, len(candidates))
    n_random = int(round(explore * k))
    if explore > 0 and k > 1:
        n_random = max(n_random, 1)
    h = entropy(probs[candidates])
    order = candidates[np.lexsort((candidates, -h))]  # entropy descending, index ascending
    greedy = order[: k - n_random]
    rest = order[k - n_random :]
    rng = np.random.default_rng(seed)
    random = rng.choice(rest, size=n_random, replace=False) if n_random else rest[:0]
    return np.concatenate([greedy, random]).astype(np.int64)


def stratified_folds(classes: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """int [N] fold index per example, classes spread evenly over folds (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(classes), dtype=np.int64)
    offset = 0
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        idx = idx[rng.permutation(len(idx))]
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return fold


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties averaged); ``nan`` when either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def expected_calibration_error(probs: np.ndarray, classes: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class confidence over ``bins`` equal-width bins (Guo et al. 2017):
    sum_b |B_b|/N * |accuracy(B_b) - confidence(B_b)|."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == classes).astype(float)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float [N, C]."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_map(x: np.ndarray, y: np.ndarray, w0: np.ndarray,
            lam: float) -> tuple[np.ndarray, np.ndarray]:
    """MAP multinomial logistic regression: (W [3, F], b [3]) minimising

    sum_i -log softmax(W x_i + b)[y_i] + lam/2 (||W - W0||^2 + ||b||^2)
    for features ``x`` [N, F] and classes ``y`` [N] in {0, 1, 2}.
    """
    n, f = x.shape
    onehot = np.eye(3)[y]  # [n, 3]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: 3 * f].reshape(3, f), theta[3 * f :]
        logits = x @ w.T + b  # [n, 3]
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        nll = float((lse - (logits * onehot).sum(axis=1)).sum())
        d = softmax(logits) - onehot  # [n, 3]
        gw = d.T @ x + lam * (w - w0)
        gb = d.sum(axis=0) + lam * b
        value = nll + 0.5 * lam * (float(((w - w0) ** 2).sum()) + float(b @ b))
        return value, np.concatenate([gw.ravel(), gb])

    theta0 = np.concatenate([w0.ravel(), np.zeros(3)])
    res = minimize(loss, theta0, jac=True, method="BFGS", options={"maxiter": 500})
    theta = res.x
    return theta[: 3 * f].reshape(3, f), theta[3 * f :]


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (Guo et al. 2017)."""

    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))
        return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def score_of(probs: np.ndarray) -> np.ndarray:
    """Expected class / 2: P(high) + P(medium) / 2, in [0, 1]."""
    return np.asarray(probs[:, 2] + 0.5 * probs[:, 1])


def to_res(images: Sequence[np.ndarray] | np.ndarray, res: int) -> np.ndarray:
    """uint8 [N, res, res, 3]: each image centre-cropped to a square and resized (Lanczos)."""
    out = np.empty((len(images), res, res, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ConfigError(f"image {i}: expected uint8 [H, W, 3], got {arr.dtype} {arr.shape}")
        h, w = arr.shape[:2]
        if (h, w) != (res, res):
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            pil = Image.fromarray(arr[top : top + side, left : left + side])
            arr = np.asarray(pil.resize((res, res), Image.Resampling.LANCZOS))
        out[i] = arr
    return out


@dataclass
class RawFeatures:
    """Unnormalised features of N images."""

    aes: np.ndarray
    """float64 [N, A]: the aesthetic measures, in :func:`measure_names` order."""
    deep: np.ndarray | None
    """float64 [N, D]: pooled backbone features, or None without a backbone."""

    def concat(self, other: RawFeatures) -> RawFeatures:
        deep = None if self.deep is None or other.deep is None else np.concatenate(
            [self.deep, other.deep])
        return RawFeatures(np.concatenate([self.aes, other.aes]), deep)


def _fetched(name: str) -> bool:
    """Whether backbone ``name``'s converted weights are in the data home already
    (``auto`` never starts a download)."""
    try:
        from muselab.models.backbones.fetch import converted_path
    except ImportError:
        return False
    return converted_path(name).is_file()


class Featurizer:
    """Images -> :class:`RawFeatures` at ``res`` px, with an in-memory cache by key."""

    def __init__(self, res: int = 64, backbone: str = "auto", progress: bool = False) -> None:
        self.res, self.requested, self.progress = res, backbone, progress
        self.backbone_name: str | None = None
        self.note = ""
        self._net: Any = None
        self._resolved = False
        self._cache: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def _resolve(self) -> None:
        """Load the backbone on first use; ``auto`` falls back to aesthetics only."""
        if self._resolved:
            return
        self._resolved = True
        if self.requested == "none":
            self.note = "aesthetic features only (backbone none)"
            return
        from muselab.evaluate.features import get_extractor

        name = AUTO_BACKBONE if self.requested == "auto" else self.requested
        if self.requested == "auto" and not _fetched(name):
            self.note = (f"aesthetic features only: {name} is not fetched (run `muselab "
                         "backbones fetch` to add its features)")
            return
        try:
            self._net = get_extractor(name)
        except MuselabError as exc:
            if self.requested != "auto":
                raise
            self.note = f"aesthetic features only: backbone {name} is unavailable ({exc})"
            return
        self.backbone_name = str(self._net.name)
        label = "in-house" if self._net.in_house else "reference"
        self.note = f"aesthetics + pooled {self.backbone_name} features ({label})"

    def raw(self, images: Sequence[np.ndarray] | np.ndarray,
            keys: Sequence[str] | None = None) -> RawFeatures:
        """Features of ``images`` (uint8 [H, W, 3] each); ``keys`` (e.g. SHA-256) cache them."""
        self._resolve()
        if keys is not None and len(keys) != len(images):
            raise ConfigError("keys must match images one to one")
        todo = [i for i in range(len(images)) if keys is None or keys[i] not in self._cache]
        if todo:
            batch = to_res([images[i] for i in todo], self.res)
            aes = aesthetic_matrix(batch)
            deep = None
            if self._net is not None:
                from muselab.evaluate.features import extract

                deep = extract(self._net, batch, batch=32, progress=self.progress,
                               what="backbone features").astype(np.float64)  # [N, D]
            if keys is None:
                return RawFeatures(aes, deep)
            for j, i in enumerate(todo):
                self._cache[keys[i]] = (aes[j], None if deep is None else deep[j])
        assert keys is not None
        rows = [self._cache[k] for k in keys]
        deep_rows = [r[1] for r in rows]
        stacked = None if any(d is None for d in deep_rows) else np.stack(deep_rows)  # type: ignore
        return RawFeatures(np.stack([r[0] for r in rows]), stacked)


@dataclass
class FeatureSpace:
    """Pool statistics that turn :class:`RawFeatures` into model inputs [N, F]."""

    mean: np.ndarray
    """float64 [A] aesthetic means over the pool."""
    std: np.ndarray
    """float64 [A] aesthetic standard deviations (1 where constant)."""
    pca_mean: np.ndarray | None = None
    """float64 [D] backbone feature mean."""
    pca_basis: np.ndarray | None = None
    """float64 [K, D] principal directions scaled so projections have unit variance."""

    @property
    def names(self) -> list[str]:
        k = 0 if self.pca_basis is None else len(self.pca_basis)
        return [*measure_names(), "complexity_dev", *(f"deep_{i}" for i in range(k))]

    @classmethod
    def fit(cls, raw: RawFeatures, pca_dim: int) -> FeatureSpace:
        std = raw.aes.std(axis=0)
        space = cls(raw.aes.mean(axis=0), np.where(std > 1e-8, std, 1.0))
        n = len(raw.aes)
        k = min(pca_dim, n - 1, 0 if raw.deep is None else raw.deep.shape[1])
        if raw.deep is not None and k > 0:
            mean = raw.deep.mean(axis=0)
            _, sv, vt = np.linalg.svd(raw.deep - mean, full_matrices=False)
            keep = sv[:k] > 1e-8 * max(float(sv[0]), 1e-300)
            scale = sv[:k][keep] / np.sqrt(n - 1)
            if keep.any():
                space.pca_mean, space.pca_basis = mean, vt[:k][keep] / scale[:, None]
        return space

    def transform(self, raw: RawFeatures) -> np.ndarray:
        """float64 [N, F]: z-scored aesthetics, |z(complexity)|, whitened PCA components."""
        z = (raw.aes - self.mean) / self.std  # [N, A]
        dev = np.abs(z[:, measure_names().index("complexity")])[:, None]
        parts = [z, dev]
        if self.pca_basis is not None and self.pca_mean is not None:
            if raw.deep is None:
                raise DataError("this value model uses backbone features, but none were computed")
            parts.append((raw.deep - self.pca_mean) @ self.pca_basis.T)  # [N, K]
        return np.concatenate(parts, axis=1)

    def tensors(self) -> dict[str, np.ndarray]:
        out = {"feat_mean": self.mean, "feat_std": self.std}
        if self.pca_basis is not None and self.pca_mean is not None:
            out |= {"pca_mean": self.pca_mean, "pca_basis": self.pca_basis}
        return out

    def meta(self) -> dict[str, Any]:
        return {"names": self.names, "aesthetics": measure_names()}

    @classmethod
    def from_saved(cls, meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> FeatureSpace:
        if meta.get("aesthetics") != measure_names():
            raise DataError("the saved value model was made with other aesthetic measures "
                            f"({meta.get('aesthetics')}); refit it")
        return cls(tensors["feat_mean"], tensors["feat_std"], tensors.get("pca_mean"),
                   tensors.get("pca_basis"))
