"""``random``: a seeded random-weight VGG-shaped network (Ustyuzhaninov et al. 2016).

Ustyuzhaninov et al. ("Texture synthesis using shallow convolutional networks with random
filters", 2016) show Gram statistics of random, untrained filters still synthesise
textures; this is the last-resort backbone when no trained weights are available. Five
blocks of one 3x3 conv + ReLU, widths 64-128-256-512-512, 2x2 average pooling between
them (Gatys 2016 prefer average pooling for synthesis). Weights are He-normal
(He et al. 2015, fan-in, gain sqrt(2)), biases zero, drawn on the CPU from
``torch.Generator().manual_seed(seed)``: the same seed gives the same network anywhere.
Input is ImageNet-normalised, as for ``vgg19``, so the two are interchangeable.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from muselab.models.backbones.base import BackboneInfo, register_backbone
from muselab.models.backbones.vgg19 import ImageNetNormalized, vgg_features, vgg_layer_names

BLOCKS = ((64, 1), (128, 1), (256, 1), (512, 1), (512, 1))
LAYERS = tuple(vgg_layer_names(BLOCKS, pool_last=False))

INFO = BackboneInfo(
    name="random",
    in_house=True,
    needs_weights=False,
    fetchable=False,
    licence="none (seeded weights)",
    layers=LAYERS,
    feature_dim=512,
    input_size=224,
    description="Seeded random-weight 5-layer conv net (Ustyuzhaninov 2016); texture "
                "statistics without trained weights",
    style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    content_layers=("relu4_1",),
)


class RandomNet(ImageNetNormalized):
    """The random network for ``seed`` (see module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(INFO)
        self.seed = seed
        self.features = vgg_features(BLOCKS, pool=nn.AvgPool2d, pool_last=False)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                    std = math.sqrt(2.0 / fan_in)
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * std)
                    assert module.bias is not None
                    module.bias.zero_()
        self.provenance |= {"seed": seed}


@register_backbone(INFO)
def build(weights: Path | None, seed: int) -> RandomNet:
    """The random network for ``seed`` (``weights`` must be None)."""
    from muselab.errors import ConfigError

    if weights is not None:
        raise ConfigError("backbone 'random' takes no weights file (its weights come from "
                          "the seed); drop weights=/--backbone-weights")
    return RandomNet(seed)
