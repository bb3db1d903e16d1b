"""Gatys optimisation: losses, one step lowers the loss, layers, options, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from muselab.errors import ConfigError
from muselab.style.common import to_float
from muselab.style.gatys import (
    GatysOptions,
    StyleLoss,
    gram,
    layers_for,
    optimise,
    relative_error,
    spread_layers,
    stylize,
    tv_loss,
)
from tests.style.conftest import photo


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(to_float(img).transpose(2, 0, 1).copy())[None]  # [1, 3, H, W]


def test_gram_tv_and_relative_error() -> None:
    f = torch.randn(2, 4, 5, 6)
    g = gram(f)
    assert g.shape == (2, 4, 4)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(g[0], f[0].reshape(4, 30) @ f[0].reshape(4, 30).T / 120)
    assert float(tv_loss(torch.ones(1, 3, 8, 8))) == 0.0
    assert float(relative_error(f, f)) == 0.0
    assert float(relative_error(10 * f, 5 * f)) == pytest.approx(1.0)


def test_one_step_lowers_the_loss_with_both_optimisers(feature_net: nn.Module) -> None:
    content, style = _t(photo("astronaut", 48)), _t(photo("immunohistochemistry", 48))
    style_l, content_l = layers_for(feature_net)  # type: ignore[arg-type]
    loss_fn = StyleLoss(feature_net, content, [style], [1.0], style_l,  # type: ignore[arg-type]
                        content_l, (1.0, 10.0, 1e-4))
    before = float(loss_fn(content)[0])
    for name in ("adam", "lbfgs"):
        x, hist = optimise(loss_fn, content, GatysOptions(steps=1, optimizer=name, lr=0.02))
        after = float(loss_fn(x)[0])
        assert np.isfinite(hist).all() and after < before, (name, before, after)


def test_stylize_multiscale_record_and_determinism(feature_net: nn.Module) -> None:
    c, s = photo("coffee", 64), photo("immunohistochemistry", 64)
    opt = GatysOptions(size=64, scales=2, steps=4, optimizer="adam", lr=0.05, init="noise",
                       seed=3)
    img, rec = stylize(c, [s], options=opt, net=feature_net)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert len(rec["loss_curves"]) == 2 and rec["style_layers"] == list(
        feature_net.style_layers)  # type: ignore[arg-type]
    assert rec["loss_curves"][0][-1] < rec["loss_curves"][0][0]
    again, _ = stylize(c, [s], options=opt, net=feature_net)
    assert np.array_equal(img, again)
    kept, _ = stylize(c, [s], options=GatysOptions(size=64, scales=1, steps=2, alpha=1.0),
                      net=feature_net)
    assert np.abs(kept.astype(int) - c).max() <= 1  # alpha = 1 keeps the content


def test_spread_layers_for_unknown_nets() -> None:
    style, content = spread_layers([f"l{i}" for i in range(10)])
    assert style[0] == "l0" and len(style) == 5 and content == ("l5",)
    with pytest.raises(ConfigError):
        spread_layers([])


def test_bad_options_and_backbone_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="--scales"):
        GatysOptions(size=64, scales=3)
    with pytest.raises(ConfigError, match="--alpha"):
        GatysOptions(alpha=1.5)
    wrong = tmp_path / "vgg19.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    from muselab.errors import MuselabError

    with pytest.raises(MuselabError, match="vgg19"):
        stylize(photo("coffee", 32), [photo("coffee", 32)],
                options=GatysOptions(backbone="vgg19", backbone_weights=str(wrong), size=32,
                                     scales=1, steps=1))
