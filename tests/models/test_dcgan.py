"""Tests for the configurable DCGAN."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from muselab.errors import ConfigError
from muselab.image.losses import d_loss
from muselab.models.dcgan import DCGANConfig, Discriminator, Generator
from muselab.models.layers import count_parameters


def tiny(**kw: object) -> DCGANConfig:
    """A small config so tests stay fast."""
    base: dict[str, object] = dict(z_dim=16, g_width=8, d_width=8, max_width=32)
    base.update(kw)
    return DCGANConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("res", [32, 64, 128])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_shapes_and_range(res: int, num_classes: int) -> None:
    cfg = tiny(resolution=res, num_classes=num_classes)
    g, d = Generator(cfg), Discriminator(cfg)
    z = g.sample_z(3, torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 9]) if num_classes else None
    x = g(z, y)
    assert x.shape == (3, 3, res, res)
    assert x.abs().max() <= 1.0
    assert d(x, y).shape == (3,)


def test_generator_output_reaches_tanh_range() -> None:
    g = Generator(tiny())
    with torch.no_grad():
        for p in g.body.to_image.parameters():
            p.mul_(1000.0)
        x = g(torch.randn(4, 16))
    assert x.max() > 0.99 and x.min() < -0.99 and x.abs().max() <= 1.0


def test_conditional_labels_change_output() -> None:
    g = Generator(tiny(num_classes=4)).eval()
    z = torch.randn(1, 16).expand(2, 16)
    x = g(z, torch.tensor([0, 1]))
    assert not torch.allclose(x[0], x[1])


def test_projection_term_uses_labels() -> None:
    d = Discriminator(tiny(num_classes=4))
    x = torch.randn(1, 3, 32, 32).expand(2, 3, 32, 32)
    out = d(x, torch.tensor([0, 1]))
    assert out[0] != out[1]


def test_spectral_norm_on_every_d_weight() -> None:
    d = Discriminator(tiny(spectral_norm=True, num_classes=3))
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]
    assert len(layers) == 5  # 3 strided convs, head, projection embedding
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    plain = Discriminator(tiny())
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())


def test_spectral_norm_bounds_weight_norm() -> None:
    d = Discriminator(tiny(spectral_norm=True))
    for _ in range(30):  # power iterations run in train-mode forwards
        d(torch.randn(2, 3, 32, 32))
    d.eval()
    w = d.head.weight  # [1, F]
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("d_norm", "expected"), [("none", None), ("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm)]
)
def test_d_norm(d_norm: str, expected: type[nn.Module] | None) -> None:
    d = Discriminator(tiny(d_norm=d_norm))
    norms = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d | nn.GroupNorm)]
    if expected is None:
        assert norms == []
    else:
        assert norms and all(isinstance(m, expected) for m in norms)
        assert all(m.num_groups == 1 for m in norms if isinstance(m, nn.GroupNorm))


def test_g_norm_none_has_no_batch_norm() -> None:
    g = Generator(tiny(g_norm="none"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in Generator(tiny()).modules())


def test_widths_double_and_cap() -> None:
    g = Generator(DCGANConfig(resolution=64, g_width=64, max_width=256))
    convs = [m for m in g.body.stages.modules() if isinstance(m, nn.Conv2d)]
    assert g.body.start_ch == 256
    assert [c.out_channels for c in convs] == [256, 256, 128, 64]
    d = Discriminator(DCGANConfig(resolution=64, d_width=64, max_width=256))
    convs = [m for m in d.body.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256]


def test_depth_adds_blocks() -> None:
    def n_convs(m: nn.Module) -> int:
        return sum(isinstance(x, nn.Conv2d) for x in m.modules())

    assert n_convs(Generator(tiny(depth=2))) == n_convs(Generator(tiny())) + 2 * 3
    assert n_convs(Discriminator(tiny(depth=1))) == n_convs(Discriminator(tiny())) + 3


def test_init_is_dcgan_normal() -> None:
    g = Generator(DCGANConfig())
    w = g.body.project.weight
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(w.mean().item()) < 1e-3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resolution", 48),
        ("z_dim", 0),
        ("g_width", -1),
        ("max_width", 8),
        ("depth", -1),
        ("g_norm", "layer"),
        ("d_norm", "instance"),
        ("spectral_norm", 1),
        ("num_classes", -2),
        ("channels", 0),
        ("resolution", 32.0),
        ("z_dim", True),
    ],
)
def test_bad_config_raises(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"DCGANConfig.{field}") as info:
        DCGANConfig(**{field: value})  # type: ignore[arg-type]
    assert repr(value) in str(info.value)


def test_bad_choice_lists_allowed_values() -> None:
    with pytest.raises(ConfigError, match="32, 64, 128"):
        DCGANConfig(resolution=256)


def test_wrong_input_shapes_raise() -> None:
    cfg = tiny(num_classes=3)
    g, d = Generator(cfg), Discriminator(cfg)
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"z must have shape \[\*, 16\]"):
        g(torch.randn(2, 15), y)
    with pytest.raises(ValueError, match=r"x must have shape \[\*, 3, 32, 32\]"):
        d(torch.randn(2, 3, 64, 64), y)
    with pytest.raises(ValueError, match="pass labels"):
        d(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="labels y must have shape"):
        g(torch.randn(2, 16), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="unconditional"):
        Generator(tiny())(torch.randn(2, 16), y)


def test_seeded_generator_is_reproducible() -> None:
    torch.manual_seed(0)
    g = Generator(DCGANConfig(resolution=32, z_dim=8, g_width=4, d_width=4, max_width=16))
    z = torch.randn(4, 8)
    with torch.no_grad():
        x = g(z)  # train mode: batch statistics
    expected = torch.tensor(
        [
            [-0.08965749, -0.09304591, -0.03573547, -0.03931209],
            [0.00281704, -0.03615494, -0.10022903, -0.08510584],
            [-0.01645326, 0.01982399, 0.02330634, 0.01432487],
        ]
    )
    torch.testing.assert_close(x[0, :, 16, 14:18], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        x[3, 2, 0, :4],
        torch.tensor([-0.01123525, 0.04573189, 0.03847498, 0.02660743]),
        atol=1e-5,
        rtol=0,
    )


def test_sample_z_uses_generator() -> None:
    g = Generator(tiny())
    a = g.sample_z(5, torch.Generator().manual_seed(3))
    b = g.sample_z(5, torch.Generator().manual_seed(3))
    assert a.shape == (5, 16) and torch.equal(a, b)


def test_discriminator_learns_real_vs_noise() -> None:
    torch.manual_seed(0)
    d = Discriminator(tiny(d_norm="layer"))
    ramp = torch.linspace(-1, 1, 32)
    real = torch.stack(  # smooth colour gradients, [16, 3, 32, 32]
        [
            torch.stack(
                [
                    ramp.view(1, -1).expand(32, 32) * s,
                    ramp.view(-1, 1).expand(32, 32),
                    torch.full((32, 32), s),
                ]
            )
            for s in torch.linspace(-1, 1, 16)
        ]
    )
    noise = torch.rand(16, 3, 32, 32) * 2 - 1
    opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    losses = []
    for _ in range(15):
        loss = d_loss("ns", d(real), d(noise))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert d(real).min() > d(noise).max()


def test_count_parameters() -> None:
    g = Generator(tiny())
    assert count_parameters(g) == sum(p.numel() for p in g.parameters())
    assert count_parameters(Generator(DCGANConfig())) > count_parameters(g)
