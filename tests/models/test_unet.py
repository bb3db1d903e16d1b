"""The diffusion U-Net: shapes, conditioning, and the null condition of guidance."""

from __future__ import annotations

import pytest
import torch

from muselab.errors import ConfigError
from muselab.models.unet import UNet, UNetConfig, timestep_embedding

TINY = {"base": 8, "mult": (1, 2), "blocks": 1, "attn_res": (8,), "heads": 2}


@pytest.mark.parametrize(("res", "channels", "mult"), [(16, 3, (1, 2)), (32, 4, (1, 2, 2)),
                                                       (8, 1, (1,))])
def test_forward_shapes(res: int, channels: int, mult: tuple[int, ...]) -> None:
    net = UNet(UNetConfig(**{**TINY, "resolution": res, "channels": channels, "mult": mult}))
    x = torch.randn(3, channels, res, res)
    assert net(x, torch.tensor([0, 10, 999])).shape == x.shape


def test_output_starts_at_zero_and_attention_is_where_asked() -> None:
    net = UNet(UNetConfig(**TINY, resolution=16))
    assert torch.equal(net(torch.randn(2, 3, 16, 16), torch.tensor([1, 2])),
                       torch.zeros(2, 3, 16, 16))  # zero-initialised output conv
    kinds = [type(a).__name__ for level in net.down for a in level.attn]
    assert kinds == ["Identity", "Attention"]  # 16 px level: none; 8 px level: attention


def test_text_condition_changes_output_and_nan_rows_mean_null() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(**TINY, resolution=16, cond_dim=6))
    for p in net.parameters():  # leave the zero init so the condition shows
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([5, 5])
    cond = torch.randn(2, 6)
    a, b = net(x, t, cond), net(x, t, cond.flip(0))
    assert not torch.allclose(a, b)
    null = net(x, t, None)
    nan = net(x, t, torch.full((2, 6), float("nan")))
    assert torch.allclose(null, nan)


def test_class_condition_has_a_null_class() -> None:
    net = UNet(UNetConfig(**TINY, resolution=16, num_classes=3))
    assert net.embedding.class_emb.num_embeddings == 4
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1, 1])
    assert net(x, t, labels=torch.tensor([0, 2])).shape == x.shape


def test_timestep_embedding_distinguishes_steps() -> None:
    e = timestep_embedding(torch.tensor([0, 1, 500]), 16)
    assert e.shape == (3, 16) and not torch.allclose(e[0], e[1])


@pytest.mark.parametrize("bad", [{"resolution": 18, "mult": (1, 2, 2)}, {"cond_dim": 4,
                                 "num_classes": 2}, {"heads": 3}])
def test_bad_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        UNet(UNetConfig(**{**TINY, "resolution": 16, **bad}))


def test_mlp_denoiser_shapes_and_null_condition() -> None:
    from muselab.models.mlp_denoiser import MLPConfig, MLPDenoiser

    torch.manual_seed(0)
    net = MLPDenoiser(MLPConfig(dim=16, width=32, depth=2, cond_dim=8))
    for p in net.parameters():  # leave the zero initialisation so the output depends on x
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(3, 16), torch.tensor([0, 10, 999])
    cond = torch.randn(3, 8)
    assert net(x, t, cond).shape == (3, 16)
    dropped = cond.clone()
    dropped[1] = float("nan")
    out, uncond = net(x, t, dropped), net(x, t)
    assert torch.allclose(out[1], uncond[1]) and not torch.allclose(out[0], uncond[0])
    with pytest.raises(AssertionError):
        net(torch.randn(3, 15), t, cond)
