"""Tests for the convolutional VAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muselab.errors import ConfigError
from muselab.models.vae import ConvVAE, VAEConfig


def tiny(**kw: object) -> VAEConfig:
    """A small config so tests stay fast."""
    base: dict[str, object] = dict(latent_dim=8, width=8, max_width=32)
    base.update(kw)
    return VAEConfig(**base)  # type: ignore[arg-type]


def structured_images(n: int, res: int = 32, seed: int = 0) -> torch.Tensor:
    """Colour gradients with a filled circle, [n, 3, res, res] in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:res, 0:res] / (res - 1)
    images = []
    for _ in range(n):
        angle, (cy, cx), radius = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.7, 2), 0.2
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2).astype(float)
        colour = rng.uniform(-1, 1, 3)
        img = np.stack([ramp * 2 - 1, 1 - 2 * disc, np.full_like(ramp, colour[0])])
        img = np.where(disc[None] > 0, colour[:, None, None], img)
        images.append(np.clip(img, -1, 1))
    return torch.tensor(np.stack(images), dtype=torch.float32)


@pytest.mark.parametrize("res", [32, 64, 128])
def test_shapes(res: int) -> None:
    vae = ConvVAE(tiny(resolution=res))
    x = torch.rand(2, 3, res, res) * 2 - 1
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (2, 8)
    recon, mu2, _ = vae(x, torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and recon.abs().max() <= 1.0
    assert torch.equal(mu, mu2)
    assert vae.decode(vae.sample_z(5)).shape == (5, 3, res, res)


def test_elbo_terms() -> None:
    vae = ConvVAE(tiny())
    x = structured_images(4)
    out = vae.elbo(x, torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "recon", "kl"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    assert out["kl"] >= 0
    torch.testing.assert_close(out["loss"], out["recon"] + out["kl"])


def test_recon_is_per_image_sum_of_squares() -> None:
    vae = ConvVAE(tiny())
    x = structured_images(3)
    g = torch.Generator().manual_seed(5)
    recon, _, _ = vae(x, torch.Generator().manual_seed(5))
    expected = ((recon - x) ** 2).sum() / 3
    torch.testing.assert_close(vae.elbo(x, g)["recon"], expected)


def test_kl_is_zero_at_prior() -> None:
    vae = ConvVAE(tiny())
    with torch.no_grad():
        vae.to_moments.weight.zero_()
        vae.to_moments.bias.zero_()  # mu = 0, logvar = 0 -> q = N(0, I)
    assert vae.elbo(structured_images(2))["kl"].item() == pytest.approx(0.0, abs=1e-7)


def test_beta_scales_kl() -> None:
    torch.manual_seed(0)
    vae = ConvVAE(tiny(beta=4.0))
    x = structured_images(4)
    out = vae.elbo(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out["loss"], out["recon"] + 4.0 * out["kl"])
    vae.cfg.beta = 0.0
    out0 = vae.elbo(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(out0["loss"], out0["recon"])
    torch.testing.assert_close(out0["kl"], out["kl"])


def test_reparameterisation_uses_generator() -> None:
    vae = ConvVAE(tiny())
    x = structured_images(2)
    a, _, _ = vae(x, torch.Generator().manual_seed(7))
    b, _, _ = vae(x, torch.Generator().manual_seed(7))
    c, _, _ = vae(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_training_lowers_loss() -> None:
    torch.manual_seed(0)
    vae = ConvVAE(tiny(latent_dim=16))
    x = structured_images(8)
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = vae.elbo(x, g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resolution", 16),
        ("latent_dim", 0),
        ("width", 0),
        ("max_width", 4),
        ("depth", 9),
        ("beta", -0.5),
        ("beta", float("nan")),
        ("beta", "1"),
        ("channels", 0),
    ],
)
def test_bad_config_raises(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"VAEConfig.{field}"):
        tiny(**{field: value})


def test_wrong_input_shape_raises() -> None:
    vae = ConvVAE(tiny())
    with pytest.raises(ValueError, match=r"encoder input must have shape \[\*, 3, 32, 32\]"):
        vae.encode(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"z must have shape \[\*, 8\]"):
        vae.decode(torch.zeros(2, 9))
