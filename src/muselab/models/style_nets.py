"""Networks for style transfer and image-to-image translation.

* :class:`ResnetGenerator`: the image transformation network of Johnson et al. 2016
  (downsample x2 -> residual blocks -> upsample x2), with instance norm instead of batch
  norm (Ulyanov et al. 2016), reflection padding, and resize-convolution upsampling
  (Odena et al. 2016) against checkerboard artefacts. CycleGAN's generator is the same
  network (Zhu et al. 2017, sec. 4 and appendix 7.2), so both use this class.
* :class:`UNetGenerator`: the pix2pix generator (Isola et al. 2017): an encoder-decoder
  with skip connections between mirrored layers (Ronneberger et al. 2015), 4x4 stride-2
  convs, LeakyReLU 0.2 down, ReLU up, tanh output; instance norm; no dropout (so a seeded
  run is deterministic and resumes exactly).
* :class:`PatchDiscriminator`: the PatchGAN of Isola et al. 2017 (C64-C128-C256-...,
  4x4 convs, LeakyReLU 0.2, instance norm except on the first layer), one logit per patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from muselab.models.layers import check_choice, check_int


@dataclass
class ResnetConfig:
    """Size of a :class:`ResnetGenerator` (Johnson 2016 uses width 32, 5 blocks)."""

    width: int = 16  # channels of the first conv; x2 after each downsampling
    n_res: int = 4  # residual blocks at 1/4 resolution
    output: Literal["sigmoid", "tanh"] = "sigmoid"  # [0, 1] (style) or [-1, 1] (CycleGAN)

    def __post_init__(self) -> None:
        check_int("model_config.net", "width", self.width, 4, 256)
        check_int("model_config.net", "n_res", self.n_res, 0, 16)
        check_choice("model_config.net", "output", self.output, ("sigmoid", "tanh"))


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection pad + conv + instance norm (affine) + ReLU."""
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm and an identity shortcut (He et al. 2016)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(c, c, 3), nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3),
            nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image [B, 3, H, W] -> image [B, 3, H, W]; H and W multiples of 4 are exact, others
    are padded by reflection and cropped back."""

    def __init__(self, cfg: ResnetConfig) -> None:
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.down = nn.Sequential(_conv(3, w, 9), _conv(w, 2 * w, 3, 2), _conv(2 * w, 4 * w, 3, 2))
        self.res = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(cfg.n_res)])
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(4 * w, 2 * w, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), _conv(2 * w, w, 3),
            nn.ReflectionPad2d(4), nn.Conv2d(w, 3, 9))
        self.act: nn.Module = nn.Sigmoid() if cfg.output == "sigmoid" else nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
        y = self.act(self.up(self.res(self.down(x))))  # [B, 3, H', W']
        return y[:, :, :h, :w]


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola 2017): [B, C, H, W] -> patch logits [B, 1, H', W'].

    ``in_channels`` 6 makes the conditional discriminator of pix2pix (input and output
    concatenated)."""

    def __init__(self, width: int = 32, n_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        check_int("model_config", "d_width", width, 4, 512)
        check_int("model_config", "d_layers", n_layers, 1, 5)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1),
                                   nn.LeakyReLU(0.2, True)]
        c = width
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            c_out = min(width * 2**i, 8 * width)
            layers += [nn.Conv2d(c, c_out, 4, stride, 1), nn.InstanceNorm2d(c_out, affine=True),
                       nn.LeakyReLU(0.2, True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UNetGenerator(nn.Module):
    """pix2pix U-Net: [B, 3, R, R] in [-1, 1] -> [B, 3, R, R] in [-1, 1]; R a power of 2."""

    def __init__(self, resolution: int, width: int = 16, max_width: int = 256) -> None:
        super().__init__()
        check_int("model_config", "width", width, 4, 256)
        depth = max(1, resolution.bit_length() - 1)  # down to 1 x 1
        chans = [min(width * 2**i, max_width) for i in range(depth)]
        self.down = nn.ModuleList()
        cin = 3
        for i, c in enumerate(chans):
            norm: nn.Module = nn.InstanceNorm2d(c, affine=True) if 0 < i < depth - 1 \
                else nn.Identity()
            self.down.append(nn.Sequential(nn.Conv2d(cin, c, 4, 2, 1), norm,
                                           nn.LeakyReLU(0.2, True)))
            cin = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_out = chans[i - 1] if i > 0 else width
            c_in = chans[i] * (1 if i == depth - 1 else 2)
            self.up.append(nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1),
                                         nn.InstanceNorm2d(c_out, affine=True) if i > 0
                                         else nn.Identity(), nn.ReLU(True)))
        self.out = nn.Sequential(nn.Conv2d(width, 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not concatenated with itself
        for i, layer in enumerate(self.up):
            x = layer(x if i == 0 else torch.cat([x, skips.pop()], dim=1))
        return self.out(x)
