"""Tests for the sliced Wasserstein distance metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from muselab.errors import ConfigError
from muselab.evaluate.swd import laplacian_pyramid, swd


def rectangles(n: int, res: int = 32, seed: int = 0) -> np.ndarray:
    """Random coloured rectangles on a coloured background, uint8 [n, res, res, 3]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (res, res), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = rng.integers(0, res - 4, 2)
            x1, y1 = x0 + rng.integers(3, res // 2), y0 + rng.integers(3, res // 2)
            draw.rectangle(
                (int(x0), int(y0), int(x1), int(y1)),
                fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
            )
        out.append(np.asarray(img))
    return np.stack(out)


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur each image with Pillow."""
    return np.stack(
        [np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images]
    )


def noise(n: int, res: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, res, res, 3), dtype=np.uint8)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def test_levels_and_identity_is_zero() -> None:
    x = rectangles(32)
    r = swd(x, x)
    assert r.levels == [32, 16]
    assert r.per_level == [0.0, 0.0] and r.mean == 0.0


def test_levels_for_larger_images() -> None:
    x = rectangles(8, res=64)
    assert swd(x, blur(x, 1), n_descriptors=16).levels == [64, 32, 16]


def test_same_distribution_much_closer_than_different() -> None:
    a, b = rectangles(128, seed=1), rectangles(128, seed=2)
    same = swd(a, b, n_descriptors=64).mean
    different = swd(a, noise(128), n_descriptors=64).mean
    assert same > 0
    assert different > 4 * same  # about 5.5x for these sets


def test_monotone_in_blur() -> None:
    x = rectangles(64, seed=3)
    scores = [swd(x, blur(x, r), n_descriptors=64).mean for r in (0.5, 1.0, 2.0, 4.0)]
    assert scores == sorted(scores), scores
    assert scores[0] > 0


def test_deterministic_and_seed_dependent() -> None:
    a, b = rectangles(32, seed=4), rectangles(32, seed=5)
    r1, r2 = swd(a, b, seed=3), swd(a, b, seed=3)
    assert r1 == r2
    assert swd(a, b, seed=4).per_level != r1.per_level


def test_uint8_and_float_inputs_agree() -> None:
    a, b = rectangles(32, seed=6), rectangles(32, seed=7)
    assert swd(a, b) == swd(as_tensor(a), as_tensor(b)) == swd(a, as_tensor(b))


def test_float_inputs_are_clipped_to_range() -> None:
    a = rectangles(16, seed=8)
    t = as_tensor(a)
    assert swd(a, t * 3.0) == swd(a, (t * 3.0).clamp(-1, 1))


def test_laplacian_pyramid_reconstructs() -> None:
    from muselab.evaluate.swd import _binomial_kernel, pyr_up

    x = torch.from_numpy(rectangles(4)).permute(0, 3, 1, 2).float()
    levels = laplacian_pyramid(x, 3)
    assert [lv.shape[-1] for lv in levels] == [32, 16, 8]
    k = _binomial_kernel(3)
    rebuilt = pyr_up(pyr_up(levels[2], k) + levels[1], k) + levels[0]
    torch.testing.assert_close(rebuilt, x, atol=1e-3, rtol=0)


def test_bad_inputs() -> None:
    x = rectangles(4)
    with pytest.raises(ValueError, match="uint8"):
        swd(x.astype(np.float32), x)
    with pytest.raises(ValueError, match="differ in shape"):
        swd(x, x[:3])
    with pytest.raises(ValueError, match="at least 16"):
        swd(x[:, :8, :8], x[:, :8, :8])
    with pytest.raises(ConfigError, match="multiple of n_repeats"):
        swd(x, x, n_projections=10, n_repeats=4)
    with pytest.raises(ConfigError, match="patch"):
        swd(x, x, patch=6)


def test_grey_and_strided_inputs() -> None:
    x = rectangles(16, seed=9)
    grey = x.mean(axis=3, keepdims=True).astype(np.uint8)  # [N, H, W, 1]
    r = swd(grey, blur(x, 2).mean(axis=3, keepdims=True).astype(np.uint8), n_descriptors=16)
    assert r.levels == [32, 16] and r.mean > 0
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # a permuted, non-contiguous view:
    assert swd(nchw.transpose(0, 2, 3, 1), blur(x, 1)) == swd(x, blur(x, 1))


def test_chunked_pyramid_gives_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import muselab.evaluate.swd as swd_module

    a, b = rectangles(20, seed=10), rectangles(20, seed=11)
    whole = swd(a, b, n_descriptors=16)
    monkeypatch.setattr(swd_module, "_CHUNK_PIXELS", 7 * 32 * 32)  # 7 images per chunk
    monkeypatch.setattr(swd_module, "_MAX_PROJECTIONS", 16 * 20 * 10)  # 10 directions a block
    chunked = swd(a, b, n_descriptors=16)
    assert chunked.per_level == pytest.approx(whole.per_level, rel=1e-6)  # summation order
