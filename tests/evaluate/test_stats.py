"""Known answers for the statistics behind FID, KID, precision/recall, density/coverage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from muselab.evaluate import stats


def reference_fid(x: np.ndarray, y: np.ndarray) -> float:
    """An independent float64 FID: np.cov, and tr sqrt(S1 S2) as the sum of the square
    roots of the eigenvalues of the symmetric S1^1/2 S2 S1^1/2 (eigh, not sqrtm), the
    rounding-noise eigenvalues of a singular product (< 1e-10 of the largest) set to 0."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(root @ s2 @ root)
    ev[ev < 1e-10 * ev.max()] = 0.0
    diff = x.mean(0) - y.mean(0)
    tr = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum()
    return float(diff @ diff + tr)


@pytest.mark.parametrize(("n", "d", "shift"), [(400, 16, 0.0), (400, 16, 0.7), (300, 48, 2.0)])
def test_fid_matches_independent_computation(n: int, d: int, shift: float) -> None:
    rng = np.random.default_rng(n + d)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    x = rng.standard_normal((n, d)) @ a
    y = rng.standard_normal((n, d)) @ a.T * 1.3 + shift
    assert stats.fid_from_features(x, y) == pytest.approx(reference_fid(x, y), abs=1e-6)


@pytest.mark.parametrize(("n", "m", "d"), [(24, 24, 64), (100, 80, 256), (300, 300, 48)])
def test_fid_singular_covariance_matches_independent_computation(n: int, m: int, d: int) -> None:
    """Fewer samples than features (rank N - 1 < D), and a dead feature in both sets
    (singular even when N > D: the sqrtm path)."""
    rng = np.random.default_rng(n + d)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((m, d)) * 0.8 + 0.3
    x[:, 5] = y[:, 5] = 0.25
    assert np.linalg.matrix_rank(np.cov(x, rowvar=False)) < d
    assert stats.fid_from_features(x, y) == pytest.approx(reference_fid(x, y), abs=1e-6)


def test_fid_known_gaussians() -> None:
    """N(mu1, s I) vs N(mu2, t I): |mu1 - mu2|^2 + D (sqrt s - sqrt t)^2."""
    d = 10
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    got = stats.frechet_distance(mu1, 4.0 * np.eye(d), mu2, 1.0 * np.eye(d))
    assert got == pytest.approx(d * 0.25 + d * (2.0 - 1.0) ** 2, abs=1e-9)
    x = np.random.default_rng(0).standard_normal((100, 8))
    assert abs(stats.fid_from_features(x, x)) < 1e-6


def test_fid_falls_back_to_eps_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """When sqrtm of the product is not finite, eps is added to both diagonals."""
    real_sqrtm = scipy.linalg.sqrtm
    calls: list[np.ndarray] = []

    def flaky(m: np.ndarray) -> np.ndarray:
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky)
    s1, s2 = np.diag([4.0, 0.0]), np.diag([1.0, 9.0])
    got = stats.trace_sqrt_product(s1, s2)
    eps = stats.FID_EPS
    want = np.sqrt((4 + eps) * (1 + eps)) + np.sqrt(eps * (9 + eps))
    assert len(calls) == 2 and got == pytest.approx(want, abs=1e-12)


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski's unbiased MMD^2 written out with loops over pairs."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / d + 1.0) ** 3)

    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_mmd2_matches_loops_and_masks_duplicate_draws() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((15, 5)) + 0.5
    kxx, kyy, kxy = stats.poly_kernel(x, x), stats.poly_kernel(y, y), stats.poly_kernel(x, y)
    got = stats.mmd2_resampled(kxx, kyy, kxy, np.arange(12), np.arange(15))
    assert got == pytest.approx(reference_mmd2(x, y), rel=1e-12)
    # A draw with repeats: pairs of two draws of one point are left out.
    ix, iy = np.array([0, 0, 3, 5]), np.array([1, 2, 2])
    want_xx = np.mean([kxx[a, b] for p, a in enumerate(ix) for q, b in enumerate(ix) if a != b])
    want_yy = np.mean([kyy[a, b] for p, a in enumerate(iy) for q, b in enumerate(iy) if a != b])
    want = want_xx + want_yy - 2 * kxy[np.ix_(ix, iy)].mean()
    assert stats.mmd2_resampled(kxx, kyy, kxy, ix, iy) == pytest.approx(want, rel=1e-12)


def test_mmd2_is_unbiased_for_one_distribution() -> None:
    """Over many independent pairs of samples of one distribution the estimates average to
    ~0 (a biased V-statistic would be clearly positive)."""
    rng = np.random.default_rng(3)
    values, biased = [], []
    for _ in range(40):
        x, y = rng.standard_normal((60, 8)), rng.standard_normal((60, 8))
        kxx, kyy, kxy = stats.poly_kernel(x, x), stats.poly_kernel(y, y), stats.poly_kernel(x, y)
        values.append(stats.mmd2_resampled(kxx, kyy, kxy, np.arange(60), np.arange(60)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    v = np.array(values)
    assert abs(v.mean()) < 3 * v.std() / np.sqrt(len(v))
    assert np.mean(biased) > 10 * v.std() / np.sqrt(len(v))


def test_precision_recall_known_cases() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    d = stats.pairwise_distances
    assert stats.precision_recall(d(x, x), d(x, x), d(x, x), 3) == (1.0, 1.0)
    far = x + 100.0
    assert stats.precision_recall(d(x, x), d(far, far), d(x, far), 3) == (0.0, 0.0)
    # Mode collapse: fakes all near one real point -> precise but no recall.
    collapsed = x[:1] + 0.01 * rng.standard_normal((200, 4))
    p, r = stats.precision_recall(d(x, x), d(collapsed, collapsed), d(x, collapsed), 3)
    assert p == 1.0 and r < 0.05


def test_density_coverage_known_cases() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((1000, 6)), rng.standard_normal((1000, 6))
    d = stats.pairwise_distances
    density, coverage = stats.density_coverage(d(x, x), d(x, y), 5)
    assert 0.85 < density < 1.15  # 1 in expectation for one distribution (Naeem 2020)
    assert 0.93 < coverage <= 1.0  # 1 - 2^-k = 0.97 for large N
    assert stats.density_coverage(d(x, x), d(x, y + 100.0), 5) == (0.0, 0.0)


def test_knn_radii() -> None:
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    dist = stats.pairwise_distances(x, x)
    np.testing.assert_allclose(stats.knn_radii(dist, 1), [1, 1, 2, 3])
    np.testing.assert_allclose(stats.knn_radii(dist, 2), [3, 2, 3, 5])
    with pytest.raises(ValueError, match="at least 5"):
        stats.knn_radii(dist, 4)


def test_bootstrap_means_bracket_the_mean() -> None:
    v = np.random.default_rng(0).random(400)
    low, high = stats.percentile_ci(stats.bootstrap_means(v, 200, np.random.default_rng(1)))
    assert low < v.mean() < high and high - low == pytest.approx(
        2 * 1.96 * v.std() / np.sqrt(400), rel=0.25)


def test_percentile_ci() -> None:
    low, high = stats.percentile_ci(np.arange(101.0))
    assert low == pytest.approx(2.5) and high == pytest.approx(97.5)
