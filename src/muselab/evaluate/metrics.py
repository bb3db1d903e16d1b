"""The metric registry (as stylegan2-ada keeps it): registered metric objects computed on
two image sets, each result with its N and a bootstrap confidence interval.

========  ==========================================  ==============================
name      scores                                      paper
========  ==========================================  ==============================
``fid``   fid (lower is better)                       Heusel et al. 2017
``kid``   kid = mean unbiased MMD^2 over subsets,     Binkowski et al. 2018
          with its std over the subsets
``pr``    precision, recall (k = 3)                   Kynkaanniemi et al. 2019
``dc``    density, coverage (k = 5)                   Naeem et al. 2020
``swd``   swd x 1e3 over Laplacian pyramids (pixels)  Karras et al. 2018
========  ==========================================  ==============================

Every score carries a 95 % bootstrap interval (``n_boot`` replicates; 0 turns it off)
and the N of each set. FID, KID and SWD redraw both sets with replacement; the
interval is the percentile interval shifted by the bootstrap's own bias, so it shows
the sampling spread around the estimate. Precision, recall, density and coverage are
means of per-sample values given the k-NN balls; their intervals resample those values. FID is
biased upward at small N (Binkowski 2018; Chong & Forsyth 2020, "Effectively Unbiased
FID"): :func:`evaluate` warns when N is below ``max(D + 1, 2048)`` (a full-rank
covariance needs more samples than features) and suggests KID, which is unbiased.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from muselab.data.imagefolder import make_progress
from muselab.errors import ConfigError, DataError
from muselab.evaluate import stats
from muselab.evaluate.features import FeatureExtractor, cached_extract, extract

FID_MIN_RECOMMENDED = 2048


@dataclass
class Score:
    """One number a metric produces, with its bootstrap interval (None when off)."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    """A score with what it was computed on."""

    name: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n_real: int
    n_fake: int
    extractor: str
    in_house: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, **context: Any) -> dict[str, Any]:
        """A ``metrics.jsonl`` line (same keys as the training callbacks: step, metric,
        value, n) plus the interval, both Ns, the features and ``context``."""
        return {
            "metric": self.name, "value": self.value, "ci_low": self.ci_low,
            "ci_high": self.ci_high, "n": self.n_fake, "n_real": self.n_real,
            "n_fake": self.n_fake, "features": self.extractor, "in_house": self.in_house,
            **self.extra, **context,
        }


Tick = Callable[[], None]


def _noop() -> None:
    """The default progress callback."""


class Metric(Protocol):
    """A registered metric: compares real and fake arrays (features, or images when
    ``space == "images"``) and returns its scores."""

    name: str
    min_n: int
    space: str  # "features" or "images"
    description: str

    def compute(
        self, real: np.ndarray, fake: np.ndarray, *, n_boot: int, rng: np.random.Generator,
        tick: Tick = _noop,
    ) -> list[Score]:
        """Scores of ``fake`` against ``real``; ``tick()`` after each bootstrap replicate."""
        ...


_METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[type], type]:
    """Class decorator: instantiate the metric and register it under ``name``."""

    def deco(cls: type) -> type:
        if name in _METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        obj = cls()
        obj.name = name
        _METRICS[name] = obj
        return cls

    return deco


def get_metric(name: str) -> Metric:
    if name not in _METRICS:
        raise ConfigError(f"--metrics: unknown metric {name!r}; choose from {', '.join(_METRICS)}")
    return _METRICS[name]


def metric_names() -> list[str]:
    return list(_METRICS)


def parse_metrics(spec: str | Sequence[str]) -> list[Metric]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> metric objects (duplicates dropped)."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise ConfigError(f"--metrics: give at least one of {', '.join(_METRICS)}")
    return [get_metric(n) for n in dict.fromkeys(names)]


def _bootstrap(
    fn: Callable[[np.ndarray, np.ndarray], Sequence[float]],
    estimate: Sequence[float],
    n_real: int,
    n_fake: int,
    n_boot: int,
    rng: np.random.Generator,
    tick: Tick = _noop,
    nonnegative: bool = False,
) -> list[tuple[float, float]]:
    """95 % CIs of each output of ``fn(real_idx, fake_idx)`` over ``n_boot`` draws of both
    sets with replacement: the percentile interval, shifted by the bootstrap's own bias
    (mean replicate - ``estimate``). A resample holds only ~63 % distinct images, which
    raises FID and SWD by itself; the shift removes that, so the interval shows the
    sampling spread around the estimate (not the estimator's small-N bias). A
    ``nonnegative`` score's interval is clipped at 0."""
    if n_boot <= 0:
        return []
    reps_list = []
    for _ in range(n_boot):
        reps_list.append(fn(rng.integers(0, n_real, n_real), rng.integers(0, n_fake, n_fake)))
        tick()
    reps = np.array(reps_list)  # [n_boot, outputs]
    out = []
    for col, est in zip(reps.T, estimate, strict=True):
        low, high = stats.percentile_ci(col)
        shift = float(col.mean()) - float(est)
        low, high = low - shift, high - shift
        out.append((max(low, 0.0), max(high, 0.0)) if nonnegative else (low, high))
    return out


def _mean_cis(per_sample: Sequence[np.ndarray], n_boot: int,
              rng: np.random.Generator) -> list[tuple[float, float]]:
    """Percentile CIs of the means of per-sample values (the k-NN metrics)."""
    if n_boot <= 0:
        return []
    return [stats.percentile_ci(stats.bootstrap_means(v, n_boot, rng)) for v in per_sample]


def _scores(names: Sequence[str], values: Sequence[float],
            cis: list[tuple[float, float]], extras: Sequence[dict[str, Any]] | None = None
            ) -> list[Score]:
    extras = extras or [{} for _ in names]
    out = []
    for i, (n, v) in enumerate(zip(names, values, strict=True)):
        low, high = cis[i] if cis else (None, None)
        out.append(Score(n, float(v), low, high, dict(extras[i])))
    return out


@register_metric("fid")
class FID:
    """Frechet Inception Distance (Heusel 2017) on whatever features are chosen."""

    name = "fid"
    min_n = 2
    space = "features"
    description = "Frechet distance between Gaussian fits of the features (lower is better)"

    def compute(self, real: np.ndarray, fake: np.ndarray, *, n_boot: int,
                rng: np.random.Generator, tick: Tick = _noop) -> list[Score]:
        value = stats.fid_from_features(real, fake)
        cis = _bootstrap(lambda i, j: [stats.fid_from_features(real[i], fake[j])], [value],
                         len(real), len(fake), n_boot, rng, tick, nonnegative=True)
        return _scores(["fid"], [value], cis)


@register_metric("kid")
class KID:
    """Kernel Inception Distance (Binkowski 2018): mean unbiased MMD^2 (cubic kernel) over
    100 random subsets of ``min(1000, N // 2)`` points of each set (stylegan2-ada uses
    ``min(1000, N)``; at small N that makes every subset the whole set and the std 0),
    with the std over the subsets in ``extra['std']``."""

    name = "kid"
    min_n = 2
    space = "features"
    description = "unbiased MMD^2, cubic polynomial kernel (lower is better; 0 = same)"
    n_subsets = 100
    subset_size = 1000

    def compute(self, real: np.ndarray, fake: np.ndarray, *, n_boot: int,
                rng: np.random.Generator, tick: Tick = _noop) -> list[Score]:
        kxx, kyy = stats.poly_kernel(real, real), stats.poly_kernel(fake, fake)  # [N, N], [M, M]
        kxy = stats.poly_kernel(real, fake)  # [N, M]
        m = max(2, min(self.subset_size, len(real) // 2, len(fake) // 2))
        subsets = np.array([
            stats.mmd2_resampled(kxx, kyy, kxy, rng.choice(len(real), m, replace=False),
                                 rng.choice(len(fake), m, replace=False))
            for _ in range(self.n_subsets)
        ])  # [n_subsets]
        value = float(subsets.mean())
        cis = _bootstrap(lambda i, j: [stats.mmd2_resampled(kxx, kyy, kxy, i, j)], [value],
                         len(real), len(fake), n_boot, rng, tick)
        extra = {"std": float(subsets.std()), "subsets": self.n_subsets, "subset_size": m}
        return _scores(["kid"], [value], cis, [extra])


@register_metric("pr")
class PrecisionRecall:
    """Improved precision and recall (Kynkaanniemi 2019), k = 3."""

    name = "pr"
    k = 3
    min_n = k + 1
    space = "features"
    description = "precision: fakes on the real manifold; recall: reals on the fake manifold"

    def compute(self, real: np.ndarray, fake: np.ndarray, *, n_boot: int,
                rng: np.random.Generator, tick: Tick = _noop) -> list[Score]:
        d_rr = stats.pairwise_distances(real, real)  # [N, N]
        d_ff = stats.pairwise_distances(fake, fake)  # [M, M]
        d_rf = stats.pairwise_distances(real, fake)  # [N, M]
        parts = stats.pr_indicators(d_rr, d_ff, d_rf, self.k)  # fakes in real, reals in fake
        values = [float(p.mean()) for p in parts]
        cis = _mean_cis(parts, n_boot, rng)
        return _scores(["precision", "recall"], values, cis, [{"k": self.k}] * 2)


@register_metric("dc")
class DensityCoverage:
    """Density and coverage (Naeem 2020), k = 5."""

    name = "dc"
    k = 5
    min_n = k + 1
    space = "features"
    description = "density: fakes per real k-NN ball / k; coverage: real balls with a fake"

    def compute(self, real: np.ndarray, fake: np.ndarray, *, n_boot: int,
                rng: np.random.Generator, tick: Tick = _noop) -> list[Score]:
        d_rr = stats.pairwise_distances(real, real)  # [N, N]
        d_rf = stats.pairwise_distances(real, fake)  # [N, M]
        parts = stats.dc_parts(d_rr, d_rf, self.k)  # per fake, per real
        values = [float(p.mean()) for p in parts]
        cis = _mean_cis(parts, n_boot, rng)
        return _scores(["density", "coverage"], values, cis, [{"k": self.k}] * 2)


@register_metric("swd")
class SWD:
    """Sliced Wasserstein distance over Laplacian pyramids (Karras 2018) on the images
    themselves (:func:`muselab.evaluate.swd.swd`); both sets are cut to the smaller N."""

    name = "swd"
    min_n = 2
    space = "images"
    description = "sliced Wasserstein distance x1e3 of 7x7 pyramid patches (lower is better)"

    def compute(self, real: np.ndarray, fake: np.ndarray, *, n_boot: int,
                rng: np.random.Generator, tick: Tick = _noop) -> list[Score]:
        from muselab.evaluate.swd import swd

        n = min(len(real), len(fake))
        seed = int(rng.integers(2**31))
        real, fake = real[:n], fake[:n]
        try:
            result = swd(real, fake, seed=seed)
        except ValueError as exc:
            raise DataError(f"swd: {exc}") from exc
        cis = _bootstrap(lambda i, j: [swd(real[i], fake[j], seed=seed).mean], [result.mean],
                         n, n, n_boot, rng, tick, nonnegative=True)
        extra = {"per_level": dict(zip(map(str, result.levels), result.per_level, strict=True))}
        return _scores(["swd"], [result.mean], cis, [extra])


# --------------------------------------------------------------------------- evaluate


@dataclass
class Evaluation:
    """Results of :func:`evaluate`, with warnings about small N."""

    results: list[MetricResult]
    warnings: list[str]


def check_sizes(metrics: Sequence[Metric], n_real: int, n_fake: int) -> None:
    """A DataError naming the metric and its minimum when a set is too small."""
    for m in metrics:
        if min(n_real, n_fake) < m.min_n:
            raise DataError(
                f"{m.name} needs at least {m.min_n} images in each set; got "
                f"{n_real} real and {n_fake} generated"
            )


def small_n_warnings(metrics: Sequence[Metric], n_real: int, n_fake: int, dim: int) -> list[str]:
    """Warnings for metrics whose estimates are unreliable at these N."""
    need = max(dim + 1, FID_MIN_RECOMMENDED)
    if any(m.name == "fid" for m in metrics) and min(n_real, n_fake) < need:
        return [
            f"N = {min(n_real, n_fake)} is too small for FID with {dim}-d features "
            f"(want >= {need}): the covariance is rank-deficient and FID is biased upward "
            "at small N (Chong & Forsyth 2020); compare runs at equal N only, and prefer KID "
            "(unbiased)"
        ]
    return []


def evaluate(
    real_images: np.ndarray,
    fake_images: np.ndarray,
    metrics: str | Sequence[str],
    extractor: FeatureExtractor,
    *,
    n_boot: int = 20,
    seed: int = 0,
    progress: bool = False,
    cache_real: bool = True,
) -> Evaluation:
    """Compute ``metrics`` of ``fake_images`` against ``real_images`` (uint8 [N, H, W, 3],
    same H and W). Feature metrics use ``extractor``; real features are cached by content.
    Deterministic for a seed."""
    chosen = parse_metrics(metrics)
    if real_images.shape[1:] != fake_images.shape[1:]:
        raise DataError(f"real {list(real_images.shape[1:])} and generated "
                        f"{list(fake_images.shape[1:])} images differ in size; resize first")
    n_real, n_fake = len(real_images), len(fake_images)
    check_sizes(chosen, n_real, n_fake)
    if n_boot < 0:
        raise ConfigError(f"--bootstrap must be >= 0; got {n_boot}")
    feats: tuple[np.ndarray, np.ndarray] | None = None
    if any(m.space == "features" for m in chosen):
        get = cached_extract if cache_real else extract
        feats = (get(extractor, real_images, progress=progress, what="reference"),
                 extract(extractor, fake_images, progress=progress, what="generated"))
    results: list[MetricResult] = []
    with make_progress(progress) as bar:
        task = bar.add_task("metrics", total=len(chosen) * (1 + n_boot))
        for done, m in enumerate(chosen, start=1):
            bar.update(task, description=f"{m.name} ({n_boot} bootstrap replicates)")
            rng = np.random.default_rng([seed, zlib.crc32(m.name.encode())])
            t0 = time.perf_counter()
            tick = functools.partial(bar.advance, task, 1)
            if m.space == "images":
                scores = m.compute(real_images, fake_images, n_boot=n_boot, rng=rng, tick=tick)
                space, in_house = "images", False
            else:
                assert feats is not None
                scores = m.compute(*feats, n_boot=n_boot, rng=rng, tick=tick)
                space, in_house = extractor.name, extractor.in_house
            seconds = time.perf_counter() - t0
            bar.update(task, completed=done * (1 + n_boot))
            results += [MetricResult(s.name, s.value, s.ci_low, s.ci_high, n_real, n_fake,
                                     space, in_house, {**s.extra, "seconds": seconds})
                        for s in scores]
    dim = extractor.dim if feats is not None else 0
    return Evaluation(results, small_n_warnings(chosen, n_real, n_fake, dim))
