"""A value model learned from the user's ratings: P(low, medium, high | image).

Features (:class:`Featurizer`, :class:`FeatureSpace`): the aesthetic measures of
:mod:`muselab.evaluate.aesthetics`, z-scored over a pool of images (the rated ones plus
any unrated candidates), ``|z(complexity)|`` (Berlyne 1971: intermediate complexity is
preferred) and, when a feature backbone is available, its pooled features reduced by PCA
to ``pca_dim`` whitened components (fitted on the same pool, no labels used).

Model: multinomial logistic regression, fitted as the MAP estimate under a Gaussian
prior centred on a fixed aesthetics-only prior model ``W0`` (:data:`PRIOR_WEIGHTS`, signs
from the literature, see ``docs/aesthetics.md``):

    loss(W, b) = sum_i -log softmax(W x_i + b)[y_i] + lam/2 (||W - W0||^2 + ||b||^2)

With no ratings the model *is* the prior; the data term grows with the number of
ratings, so the prior's weight falls as about ``lam / (lam + n)`` (a Bayesian blend by
count). ``lam`` is ``prior_strength`` until there are 40 ratings, then chosen from a grid
by cross-validated log-loss. Out-of-fold predictions give the held-out accuracy and
Spearman correlation reported to the user, the same figures for the prior alone, and
the temperature (Guo et al. 2017) that calibrates the final model, with the expected
calibration error before and after.

Saved as ``model.safetensors`` + ``config.json`` (no pickle) by :meth:`ValueModel.save`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from muselab import __version__
from muselab.config import build, to_dict
from muselab.errors import ConfigError, DataError
from muselab.evaluate import active
from muselab.evaluate.active import (
    FeatureSpace,
    Featurizer,
    RawFeatures,
    fit_map,
    fit_temperature,
    score_of,
    softmax,
)
from muselab.io import atomic_open, atomic_write, write_json
from muselab.store.ratings import CLASSES, RatingStore

FORMAT = "muselab-value-model"
#: Prior weights on z-scored features (0 for all others); see docs/aesthetics.md.
PRIOR_WEIGHTS = {"colourfulness": 1.0, "saturation": 0.5, "contrast": 0.5, "sharpness": 0.5,
                 "harmony": 0.5, "symmetry_lr": 0.5, "thirds": 0.25, "complexity_dev": -0.5}
#: Candidate prior strengths for cross-validation once there are MIN_SELECT ratings.
LAMBDAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MIN_SELECT = 40
#: Fewer ratings than this: no held-out figures and no temperature scaling.
MIN_HELDOUT = 10


@dataclass
class ValueConfig:
    """Settings of a value model (checked by :func:`muselab.config.build`)."""

    res: int = 64
    """Images are centre-cropped and resized to res x res before any feature."""
    backbone: str = "auto"
    """``none``, ``auto`` (mobilenet-v2 when available, else none) or a backbone name."""
    pca_dim: int = 16
    """Backbone features kept after PCA."""
    prior_strength: float = 10.0
    """lam while ratings are few: how many ratings the prior is worth, roughly."""
    folds: int = 5
    """Cross-validation folds for the held-out figures."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 16 <= self.res <= 512:
            raise ConfigError(f"res must be 16-512, got {self.res}")
        if self.pca_dim < 0 or self.folds < 2 or self.prior_strength <= 0:
            raise ConfigError("need pca_dim >= 0, folds >= 2 and prior_strength > 0")


@dataclass
class Prediction:
    """Output of :meth:`ValueModel.predict`."""

    probs: np.ndarray
    """float64 [N, 3]: P(low), P(medium), P(high), calibrated."""
    score: np.ndarray
    """float64 [N] in [0, 1]: P(high) + P(medium) / 2, the expected class / 2."""


@dataclass
class FitReport:
    """What one fit learned and how well it does on held-out ratings."""

    n: int
    counts: list[int]
    lam: float
    temperature: float
    features: list[str]
    backbone: str | None
    note: str
    heldout: dict[str, float] | None = None
    time: float = field(default_factory=time.time)

    def summary(self) -> str:
        """One line for the terminal."""
        head = f"{self.n} ratings (low/med/high {'/'.join(map(str, self.counts))})"
        if self.heldout is None:
            return f"{head}; too few for held-out figures (need {MIN_HELDOUT})"
        h = self.heldout
        return (f"{head}; held-out accuracy {h['accuracy']:.2f} (prior {h['prior_accuracy']:.2f}),"
                f" Spearman {h['spearman']:.2f} (prior {h['prior_spearman']:.2f}),"
                f" ECE {h['ece_after']:.3f}")


def prior_weights(names: Sequence[str], x_pool: np.ndarray) -> np.ndarray:
    """W0 float64 [3, F]: logits (-s, 0, s) with s = w . x, w from :data:`PRIOR_WEIGHTS`
    scaled so that s has unit standard deviation over the pool ``x_pool`` [N, F] (so the
    prior says P(high) ~ 0.87 two standard deviations up, never 0.99 at once)."""
    w = np.array([PRIOR_WEIGHTS.get(n, 0.0) for n in names])
    sd = float((x_pool @ w).std()) if len(x_pool) > 1 else 0.0
    w = w / sd if sd > 1e-8 else w / max(float(np.linalg.norm(w)), 1e-12)
    return np.outer([-1.0, 0.0, 1.0], w)


class ValueModel:
    """Predicts low/medium/high for images from the user's ratings; see the module docstring.

    >>> model = ValueModel(ValueConfig(backbone="none"))            # doctest: +SKIP
    >>> report = model.fit(RatingStore.open(), pool=candidates)     # doctest: +SKIP
    >>> model.predict(candidates).score                             # doctest: +SKIP
    """

    def __init__(self, config: ValueConfig | None = None,
                 featurizer: Featurizer | None = None) -> None:
        self.config = config or ValueConfig()
        self.featurizer = featurizer or Featurizer(self.config.res, self.config.backbone)
        self.space: FeatureSpace | None = None
        self.w = self.w0 = np.zeros((3, 0))
        self.b = np.zeros(3)
        self.temperature = 1.0
        self.report: FitReport | None = None

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, store: RatingStore, *, rater: str | None = None,
            pool: Sequence[np.ndarray] | None = None,
            pool_keys: Sequence[str] | None = None, evaluate: bool = True) -> FitReport:
        """Fit on the current ratings in ``store`` (an empty table raises :class:`DataError`).

        ``pool``: unrated candidate images (uint8 [H, W, 3] each) that join the rated ones
        in fitting the feature normalisation and PCA; ``pool_keys`` caches their features.
        ``evaluate=False`` skips the cross-validation (fast refits inside a rating loop):
        the previous fit's lam and temperature are kept and ``heldout`` is carried over.
        """
        thumbs, ratings = store.training_set(rater)
        classes = np.array([r.klass for r in ratings])
        levels = np.array([r.level for r in ratings])
        return self.fit_images(thumbs, classes, levels, keys=[r.sha256 for r in ratings],
                               pool=pool, pool_keys=pool_keys, evaluate=evaluate)

    def fit_images(self, images: Sequence[np.ndarray], classes: np.ndarray, levels: np.ndarray,
                   *, keys: Sequence[str] | None = None, pool: Sequence[np.ndarray] | None = None,
                   pool_keys: Sequence[str] | None = None, evaluate: bool = True) -> FitReport:
        """Fit on rated ``images`` with class indices [N] (0 low .. 2 high) and ordinal
        ``levels`` [N] (for Spearman); ``pool`` and ``evaluate`` as in :meth:`fit`."""
        classes = np.asarray(classes, dtype=np.int64)
        if len(images) == 0:
            raise DataError("no rated images to fit the value model on")
        if len(classes) != len(images) or len(levels) != len(images):
            raise ConfigError("images, classes and levels must have the same length")
        raw = self.featurizer.raw(images, keys)
        pool_raw = self.featurizer.raw(pool, pool_keys) if pool is not None and len(pool) else None
        self.space, self.w0 = self._prior(raw if pool_raw is None else raw.concat(pool_raw))
        x = self.space.transform(raw)
        previous = self.report
        if not evaluate and previous is not None:
            lam, heldout_logits, heldout = previous.lam, None, previous.heldout
        else:
            lam, heldout_logits = self._select_lambda(x, classes)
            self.temperature, heldout = 1.0, None
        self.w, self.b = fit_map(x, classes, self.w0, lam)
        if heldout_logits is not None:
            self.temperature = fit_temperature(heldout_logits, classes)
            heldout = self._heldout(x, heldout_logits, classes, np.asarray(levels, float))
        self.report = FitReport(
            n=len(classes), counts=[int((classes == c).sum()) for c in range(3)], lam=lam,
            temperature=self.temperature, features=list(self.space.names),
            backbone=self.featurizer.backbone_name, note=self.featurizer.note, heldout=heldout)
        return self.report

    def _oof_logits(self, x: np.ndarray, y: np.ndarray, lam: float,
                    fold: np.ndarray) -> np.ndarray:
        """Out-of-fold logits [N, 3]: each fold predicted by a model fit on the others."""
        out = np.zeros((len(y), 3))
        for k in np.unique(fold):
            test = fold == k
            w, b = fit_map(x[~test], y[~test], self.w0, lam)
            out[test] = x[test] @ w.T + b
        return out

    def _select_lambda(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        """(lam, its out-of-fold logits or None when there are too few ratings)."""
        if len(y) < MIN_HELDOUT:
            return self.config.prior_strength, None
        folds = min(self.config.folds, len(y) // 2)
        fold = active.stratified_folds(y, folds, self.config.seed)
        grid = LAMBDAS if len(y) >= MIN_SELECT else (self.config.prior_strength,)
        best: tuple[float, float, np.ndarray] | None = None
        for lam in grid:
            logits = self._oof_logits(x, y, lam, fold)
            nll = float(-np.log(np.clip(softmax(logits)[np.arange(len(y)), y], 1e-12, None)).sum())
            if best is None or nll < best[0]:
                best = (nll, lam, logits)
        assert best is not None
        return best[1], best[2]

    def _heldout(self, x: np.ndarray, logits: np.ndarray, y: np.ndarray,
                 levels: np.ndarray) -> dict[str, float]:
        raw_p = softmax(logits)
        p = softmax(logits / self.temperature)
        prior_p = softmax(x @ self.w0.T)
        return {
            "n": float(len(y)),
            "accuracy": float((p.argmax(axis=1) == y).mean()),
            "spearman": active.spearman(score_of(p), levels),
            "logloss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()),
            "ece_before": active.expected_calibration_error(raw_p, y),
            "ece_after": active.expected_calibration_error(p, y),
            "prior_accuracy": float((prior_p.argmax(axis=1) == y).mean()),
            "prior_spearman": active.spearman(score_of(prior_p), levels),
        }

    def _prior(self, pool: RawFeatures) -> tuple[FeatureSpace, np.ndarray]:
        """The feature space fitted on ``pool`` and the prior weights W0 in it."""
        space = FeatureSpace.fit(pool, self.config.pca_dim)
        return space, prior_weights(space.names, space.transform(pool))

    def use_prior(self, pool: Sequence[np.ndarray], keys: Sequence[str] | None = None) -> None:
        """Become the aesthetics-only prior, with features normalised over ``pool`` (for
        ranking or choosing what to rate before there are any ratings)."""
        self.space, self.w0 = self._prior(self.featurizer.raw(pool, keys))
        self.w, self.b, self.temperature, self.report = self.w0.copy(), np.zeros(3), 1.0, None

    # -- prediction ------------------------------------------------------------------------

    def predict(self, images: Sequence[np.ndarray] | np.ndarray,
                keys: Sequence[str] | None = None) -> Prediction:
        """Class probabilities and scores of ``images`` (uint8 [H, W, 3] each, any size).

        Before any fit or :meth:`use_prior`, the prior is used with features normalised
        over ``images`` itself.
        """
        raw = self.featurizer.raw(images, keys)
        if self.space is None:
            space, w0 = self._prior(raw)
            probs = softmax(space.transform(raw) @ w0.T)
        else:
            x = self.space.transform(raw)
            probs = softmax((x @ self.w.T + self.b) / self.temperature)
        return Prediction(probs=probs, score=score_of(probs))

    def next_to_rate(self, images: Sequence[np.ndarray] | np.ndarray, k: int = 1, *,
                     keys: Sequence[str] | None = None, exclude: np.ndarray | None = None,
                     explore: float = 0.0) -> np.ndarray:
        """Indices of the ``k`` images whose rating would teach the model most
        (:func:`muselab.evaluate.active.next_to_rate`)."""
        probs = self.predict(images, keys).probs
        return active.next_to_rate(probs, k, exclude=exclude, explore=explore,
                                   seed=self.config.seed)

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` and append to ``history.jsonl``."""
        from safetensors.numpy import save_file

        if self.space is None or self.report is None:
            raise ConfigError("fit the value model before saving it")
        out = Path(directory)
        tensors = {"w": self.w, "b": self.b, "w0": self.w0, **self.space.tensors()}
        tensors = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}
        atomic_write(out / "model.safetensors", lambda tmp: save_file(tensors, tmp))
        write_json(out / "config.json", {
            "format": FORMAT, "version": 1, "muselab": __version__, "classes": list(CLASSES),
            "config": {**to_dict(self.config), "backbone": self.featurizer.backbone_name or "none"},
            "temperature": self.temperature,
            "space": self.space.meta(), "report": dataclasses.asdict(self.report)})
        history = out / "history.jsonl"
        old = history.read_text() if history.exists() else ""
        with atomic_open(history, "w") as fh:
            fh.write(old + json.dumps(dataclasses.asdict(self.report), sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> ValueModel:
        """Load a model written by :meth:`save` (tensors only; nothing is unpickled)."""
        from safetensors.numpy import load_file

        path = Path(directory)
        try:
            meta: dict[str, Any] = json.loads((path / "config.json").read_text())
            tensors = load_file(str(path / "model.safetensors"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot load a value model from {path}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise DataError(f"{path / 'config.json'} is not a muselab value model")
        config = build(ValueConfig, meta["config"], source=str(path / "config.json"))
        model = cls(config)
        model.space = FeatureSpace.from_saved(meta["space"], tensors)
        model.w, model.b, model.w0 = tensors["w"], tensors["b"], tensors["w0"]
        model.temperature = float(meta["temperature"])
        model.report = FitReport(**meta["report"])
        return model


def default_model_dir(store: RatingStore, rater: str | None) -> Path:
    """``<database folder>/value-models/<rater or "all">``."""
    if store.path is None:
        raise ConfigError("an in-memory ratings store has no folder: give a model directory")
    return store.path.parent / "value-models" / (rater or "all")
