"""The statistics behind the distribution metrics, on feature arrays ``[N, D]``.

* :func:`frechet_distance`: FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium"), in float64 with
  ``scipy.linalg.sqrtm`` and pytorch-fid's fallback (``eps`` added to both diagonals)
  when the square root of a singular product is not finite.
* :func:`poly_kernel` / :func:`mmd2_resampled`: KID (Binkowski et al. 2018,
  "Demystifying MMD GANs"), the unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``; :mod:`muselab.evaluate.metrics` averages it over random
  subsets and reports its standard deviation over the subsets.
* :func:`precision_recall`: improved precision and recall (Kynkaanniemi et al. 2019,
  "Improved Precision and Recall Metric for Assessing Generative Models"), k-NN
  hyperspheres around each set's points (k = 3).
* :func:`density_coverage`: density and coverage (Naeem et al. 2020, "Reliable Fidelity
  and Diversity Metrics for Generative Models"), k-NN balls around the real points
  only (k = 5).
* :func:`percentile_ci` / :func:`bootstrap_means`: the percentile bootstrap (Efron &
  Tibshirani 1993) behind every metric's confidence interval.

The k-NN metrics are means of per-sample values (is this fake inside the real manifold?)
given the k-NN balls, so their intervals resample those values with the balls held fixed:
redrawing the points that *define* the balls would put repeated points in a resample,
which changes every k-th-neighbour radius and biases the replicates. KID's replicates
index into precomputed kernel matrices, leaving out pairs of two draws of one point.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg

FID_EPS = 1e-6  # pytorch-fid's diagonal offset for singular products


# --------------------------------------------------------------------------- FID


def mean_cov(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of ``feats`` [N, D], in float64."""
    x = np.asarray(feats, dtype=np.float64)  # [N, D]
    mu = x.mean(axis=0)  # [D]
    xc = x - mu  # [N, D]
    sigma = xc.T @ xc / max(len(x) - 1, 1)  # [D, D]
    return mu, sigma


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = FID_EPS) -> float:
    """``tr sqrt(sigma1 @ sigma2)`` with ``scipy.linalg.sqrtm``; when the root is not finite
    (a singular product), ``eps`` is added to both diagonals, as pytorch-fid does."""
    with warnings.catch_warnings():  # "matrix is singular": handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)  # [D, D], maybe complex
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding gives tiny imaginary parts; large ones mean the input was not PSD.
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise ValueError(f"FID: imaginary component {imag:.3g} in sqrtm (covariance not PSD)")
        covmean = covmean.real
    return float(np.trace(covmean))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``, in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2  # [D]
    tr = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + tr)


def trace_sqrt_low_rank(real: np.ndarray, fake: np.ndarray) -> float:
    """``tr sqrt(S1 S2)`` exactly when there are fewer samples than features.

    With centred data Xc [N, D], Yc [M, D], ``S1 S2 = Xc^T (Xc Yc^T Yc Xc^T)-ish``: the
    non-zero eigenvalues of ``S1 S2`` are those of ``A A^T`` with ``A = Xc Yc^T /
    sqrt((N-1)(M-1))`` [N, M], so ``tr sqrt(S1 S2)`` is the nuclear norm (sum of singular
    values) of A. No square root of a rounding-noise eigenvalue is ever taken, which is
    what makes ``sqrtm`` of a singular product inexact (errors ~1e-6 at D = 64)."""
    x = np.asarray(real, np.float64)
    y = np.asarray(fake, np.float64)
    a = (x - x.mean(0)) @ (y - y.mean(0)).T / np.sqrt((len(x) - 1) * (len(y) - 1))  # [N, M]
    return float(np.linalg.svd(a, compute_uv=False).sum())


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets [N, D] and [M, D].

    When a covariance is singular for lack of samples (N <= D or M <= D) the trace term
    comes from :func:`trace_sqrt_low_rank` (exact); otherwise from ``sqrtm``."""
    if min(len(real), len(fake)) - 1 >= real.shape[1]:
        return frechet_distance(*mean_cov(real), *mean_cov(fake))
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    diff = x.mean(0) - y.mean(0)  # [D]
    tr1 = ((x - x.mean(0)) ** 2).sum() / (len(x) - 1)  # tr S1, without forming S1 [D, D]
    tr2 = ((y - y.mean(0)) ** 2).sum() / (len(y) - 1)
    return float(diff @ diff + tr1 + tr2 - 2.0 * trace_sqrt_low_rank(x, y))


# --------------------------------------------------------------------------- KID


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel ``(x.y / d + 1)^3`` of [N, D] and [M, D] -> [N, M], float64."""
    d = x.shape[1]
    gram = np.asarray(x, np.float64) @ np.asarray(y, np.float64).T  # [N, M]
    return (gram / d + 1.0) ** 3


def mmd2_resampled(
    kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, ix: np.ndarray, iy: np.ndarray
) -> float:
    """Unbiased MMD^2 of the draws ``ix`` of x and ``iy`` of y from the full kernel matrices
    ``kxx`` [N, N], ``kyy`` [M, M], ``kxy`` [N, M]:
    ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean k(x_i, y_j)``, where
    ``i != j`` leaves out the diagonal and, for bootstrap draws with replacement, pairs
    of two draws of the same point. For a subset without replacement this is exactly
    Binkowski's unbiased estimator."""
    def within(k: np.ndarray, idx: np.ndarray) -> float:
        block = k[np.ix_(idx, idx)]  # [m, m]
        keep = idx[:, None] != idx[None, :]  # [m, m], False for draws of one point
        return float(block[keep].mean())

    return within(kxx, ix) + within(kyy, iy) - 2.0 * float(kxy[np.ix_(ix, iy)].mean())


# --------------------------------------------------------------------------- k-NN manifolds


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances [N, M] between rows of [N, D] and [M, D], float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)  # [N, M]
    return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(dist_xx: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point [N], from the square
    distance matrix [N, N]."""
    if dist_xx.shape[1] - 1 < k:
        raise ValueError(f"k-NN radius with k={k} needs at least {k + 1} samples")
    d = dist_xx.copy()
    np.fill_diagonal(d, np.inf)  # a point is not its own neighbour
    return np.partition(d, k - 1, axis=1)[:, k - 1]  # [N]


def in_manifold(dist_ab: np.ndarray, radii_a: np.ndarray) -> np.ndarray:
    """For each b [M]: is it inside some ball of a (``dist_ab`` [N, M], radii [N])?"""
    return np.asarray((dist_ab <= radii_a[:, None]).any(axis=0))  # [M] bool


def pr_indicators(
    d_rr: np.ndarray, d_ff: np.ndarray, d_rf: np.ndarray, k: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Kynkaanniemi 2019, per sample: is each fake inside the real manifold (the union of
    balls reaching each real point's k-th neighbour) [M], is each real inside the fake
    manifold [N]. Precision and recall are their means."""
    return in_manifold(d_rf, knn_radii(d_rr, k)), in_manifold(d_rf.T, knn_radii(d_ff, k))


def precision_recall(
    d_rr: np.ndarray, d_ff: np.ndarray, d_rf: np.ndarray, k: int = 3
) -> tuple[float, float]:
    """Improved precision and recall from the distance matrices real-real [N, N],
    fake-fake [M, M] and real-fake [N, M]."""
    fake_in, real_in = pr_indicators(d_rr, d_ff, d_rf, k)
    return float(fake_in.mean()), float(real_in.mean())


def dc_parts(d_rr: np.ndarray, d_rf: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Naeem 2020, per sample: for each fake, the number of real k-NN balls holding it
    divided by k [M]; for each real, whether its ball holds a fake [N]. Density and
    coverage are their means."""
    inside = d_rf <= knn_radii(d_rr, k)[:, None]  # [N, M]
    return inside.sum(axis=0) / k, np.asarray(inside.any(axis=1))


def density_coverage(d_rr: np.ndarray, d_rf: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density (1 in expectation for identical distributions, can exceed 1) and coverage
    (share of real points whose ball holds at least one fake)."""
    per_fake, per_real = dc_parts(d_rr, d_rf, k)
    return float(per_fake.mean()), float(per_real.mean())


# --------------------------------------------------------------------------- bootstrap


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of per-sample ``values`` [N]."""
    v = np.asarray(values, np.float64)
    return np.array([v[rng.integers(0, len(v), len(v))].mean() for _ in range(n_boot)])


def percentile_ci(values: np.ndarray | Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of ``values`` at ``level`` (default 95 %)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(v, [tail, 100.0 - tail])
    return float(low), float(high)
