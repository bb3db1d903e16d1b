"""The noise process: schedules and the algebra between x0, eps and v."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muselab.image.schedule import NoiseSchedule, make_alpha_bar


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alpha_bar_decreases_from_one_to_near_zero(kind: str) -> None:
    ab = make_alpha_bar(kind, 1000)  # type: ignore[arg-type]
    assert np.all(np.diff(ab) < 0)
    assert 0.99 < ab[0] <= 1.0 and ab[-1] < 1e-3


def test_cosine_matches_nichol_dhariwal() -> None:
    ab = make_alpha_bar("cosine", 1000)
    f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    assert ab[499] == pytest.approx(f(500) / f(0), rel=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_split_recovers_x0_and_eps_from_the_target(prediction: str) -> None:
    s = NoiseSchedule("cosine", 1000, prediction)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 100, 500, 998])
    xt = s.add_noise(x0, eps, t)
    x0_hat, eps_hat = s.split(s.target(x0, eps, t), xt, t)
    assert torch.allclose(x0_hat, x0, atol=2e-3) and torch.allclose(eps_hat, eps, atol=1e-4)


def test_t_minus_one_is_the_clean_image() -> None:
    s = NoiseSchedule()
    x0 = torch.randn(2, 3, 4, 4)
    assert torch.equal(s.add_noise(x0, torch.randn_like(x0), torch.tensor([-1, -1])), x0)
