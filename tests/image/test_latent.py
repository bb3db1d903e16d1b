from __future__ import annotations

import torch

from muselab.image.latent import slerp, walk


def test_slerp_endpoints_and_norm() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 128, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    # a Gaussian latent's typical norm is kept; a linear midpoint shrinks towards the centre
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 0.05 * a.norm()
    assert ((a + b) / 2).norm() < 0.8 * mid.norm()


def test_slerp_of_parallel_vectors_is_finite() -> None:
    a = torch.ones(8)
    out = slerp(a, 2 * a, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.isfinite(out).all() and torch.allclose(out[1], 1.5 * a)


def test_walk_shapes() -> None:
    pts = torch.randn(3, 16)
    path = walk(pts, 4)
    assert path.shape == (9, 16)
    assert torch.allclose(path[0], pts[0]) and torch.allclose(path[4], pts[1], atol=1e-5)
    assert torch.allclose(path[-1], pts[-1])
    assert walk(pts, 4, loop=True).shape == (12, 16)
