"""Tests for DiffAugment."""

from __future__ import annotations

import pytest
import torch

from muselab.errors import ConfigError
from muselab.image.augment import diff_augment


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b: int = 8, res: int = 16) -> torch.Tensor:
    return torch.rand(b, 3, res, res, generator=gen(123)) * 2 - 1  # [B, 3, R, R]


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_shape_and_reproducibility(policy: str) -> None:
    x = images()
    a = diff_augment(x, policy, gen(0))
    assert a.shape == x.shape
    assert torch.equal(a, diff_augment(x, policy, gen(0)))
    assert not torch.equal(a, diff_augment(x, policy, gen(1)))
    assert not torch.equal(a, x)


def test_empty_policy_is_identity() -> None:
    x = images()
    assert diff_augment(x, "", gen(0)) is x


def test_unknown_policy_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="color, translation, cutout") as info:
        diff_augment(images(), "color,flip")
    assert "flip" in str(info.value)


def test_gradients_flow() -> None:
    x = images().requires_grad_(True)
    diff_augment(x, generator=gen(0)).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_color_ranges() -> None:
    x = torch.zeros(256, 3, 4, 4)  # flat grey: only brightness changes it
    out = diff_augment(x, "color", gen(0))
    offsets = out[:, 0, 0, 0]
    assert torch.allclose(out, offsets.view(-1, 1, 1, 1).expand_as(out))
    assert offsets.min() >= -0.5 and offsets.max() < 0.5 and offsets.std() > 0.2


def test_translation_moves_pixel_by_at_most_an_eighth() -> None:
    res, b = 32, 64
    x = torch.zeros(b, 1, res, res)
    x[:, :, 16, 16] = 1.0  # one-hot image
    out = diff_augment(x, "translation", gen(0))
    shifts = set()
    for img in out[:, 0]:
        (ys, xs) = torch.nonzero(img, as_tuple=True)
        assert len(ys) == 1 and img.sum() == 1.0  # moved, not duplicated or lost
        dy, dx = int(ys[0]) - 16, int(xs[0]) - 16
        assert abs(dy) <= res // 8 and abs(dx) <= res // 8
        shifts.add((dy, dx))
    assert len(shifts) > 10


def test_translation_pads_with_zeros() -> None:
    x = torch.ones(32, 3, 16, 16)
    out = diff_augment(x, "translation", gen(0))
    zero_rows = (out[:, 0] == 0).all(dim=2).sum(dim=1)  # [B]
    zero_cols = (out[:, 0] == 0).all(dim=1).sum(dim=1)  # [B]
    assert (zero_rows <= 2).all() and (zero_cols <= 2).all()
    assert ((out == 0) | (out == 1)).all() and (zero_rows + zero_cols).max() > 0


def test_cutout_zeroes_a_square_of_half_size() -> None:
    res = 16
    x = torch.ones(200, 3, res, res)
    out = diff_augment(x, "cutout", gen(0))
    full = 0
    for img in out:
        zero = img[0] == 0  # [H, W]
        assert torch.equal(zero, img[1] == 0)  # same region in every channel
        rows, cols = zero.any(dim=1).sum().item(), zero.any(dim=0).sum().item()
        assert zero.sum() == rows * cols  # one axis-aligned rectangle
        assert res // 4 <= rows <= res // 2 and res // 4 <= cols <= res // 2
        full += rows == cols == res // 2
    assert full > 20  # most squares lie fully inside
