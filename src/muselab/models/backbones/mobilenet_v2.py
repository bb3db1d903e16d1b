"""MobileNetV2 (Sandler et al. 2018), width 1.0, as Keras builds it, without its head.

The weights are the ``mobilenet_v2`` model of npm ``nsfwjs@4.3.0``: Keras'
ImageNet MobileNetV2 fine-tuned (blocks 11 and up) as a 5-class NSFW classifier, stored
8-bit quantised. ``muselab backbones fetch mobilenet-v2`` converts them (see
:mod:`muselab.models.backbones.fetch`); the NSFW head is dropped.

Input: RGB in ``[0, 1]`` fed as is (nsfwjs divides pixels by 255 and nothing else).
Layers: ``conv1`` (stride 2, 32 ch), ``block_0`` .. ``block_16`` (outputs of the
inverted-residual blocks, after the residual add) and ``conv_last`` (1280 ch, ReLU6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor, nn

from muselab.models.backbones.base import (
    Backbone,
    BackboneInfo,
    ConvBN,
    register_backbone,
)
from muselab.models.backbones.tfjs import batchnorm, conv_kernel, depthwise_kernel

#: (expansion t, output channels c, repeats n, first stride s) per stage (Sandler 2018, Tab. 2).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
LAYERS = ("conv1", *(f"block_{i}" for i in range(17)), "conv_last")

INFO = BackboneInfo(
    name="mobilenet-v2",
    in_house=True,
    needs_weights=False,
    fetchable=True,
    licence="MIT (npm nsfwjs@4.3.0); ImageNet-initialised Keras weights, NSFW-fine-tuned",
    layers=LAYERS,
    feature_dim=1280,
    input_size=224,
    description="MobileNetV2 1.0 (Sandler 2018), ImageNet-initialised, NSFW-fine-tuned; "
                "converted from the tfjs weights in npm nsfwjs@4.3.0",
    style_layers=("conv1", "block_2", "block_5", "block_9", "block_12"),
    content_layers=("block_5",),
)


class InvertedResidual(nn.Module):
    """Expand 1x1 (ReLU6) -> depthwise 3x3 (ReLU6) -> project 1x1 (linear) [+ input]."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBN(cin, mid, 1, act="relu6") if expand != 1 else None
        self.depthwise = ConvBN(mid, mid, 3, stride=stride, groups=mid, act="relu6",
                                padding=1 if stride == 1 else 0, tf_same=stride != 1)
        self.project = ConvBN(mid, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        """``[B, cin, H, W] -> [B, cout, H/stride, W/stride]``."""
        h = self.expand(x) if self.expand is not None else x  # [B, mid, H, W]
        h = self.project(self.depthwise(h))  # [B, cout, H', W']
        return x + h if self.residual else h


class MobileNetV2(Backbone):
    """The feature trunk of MobileNetV2 1.0 with named layers (see module docstring)."""

    def __init__(self) -> None:
        super().__init__(INFO)
        self.conv1 = ConvBN(3, 32, 3, stride=2, act="relu6", tf_same=True)
        cin, index = 32, 0
        for expand, cout, repeats, stride in STAGES:
            for r in range(repeats):
                block = InvertedResidual(cin, cout, stride if r == 0 else 1, expand)
                self.add_module(f"block_{index}", block)
                cin, index = cout, index + 1
        self.conv_last = ConvBN(320, 1280, 1, act="relu6")

    def steps(self) -> list[tuple[str, nn.Module]]:
        """Layers in order."""
        return [(name, getattr(self, name)) for name in LAYERS]


def _conv(weights: dict[str, np.ndarray], layer: str, prefix: str) -> dict[str, np.ndarray]:
    """A Keras conv (or depthwise conv) + its BN layer -> ``ConvBN`` keys under ``prefix``."""
    if f"{layer}/depthwise_kernel" in weights:
        kernel = depthwise_kernel(weights[f"{layer}/depthwise_kernel"])
    else:
        kernel = conv_kernel(weights[f"{layer}/kernel"])
    bn = f"{layer}_BN" if f"{layer}_BN/moving_mean" in weights else f"{layer}_bn"
    if layer == "Conv1":
        bn = "bn_Conv1"
    return {f"{prefix}.conv.weight": kernel, **batchnorm(weights, bn, f"{prefix}.bn")}


def keras_to_state(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras MobileNetV2 weight names -> this module's state dict (head dropped)."""
    state = {**_conv(weights, "Conv1", "conv1"), **_conv(weights, "Conv_1", "conv_last")}
    state |= _conv(weights, "expanded_conv_depthwise", "block_0.depthwise")
    state |= _conv(weights, "expanded_conv_project", "block_0.project")
    for i in range(1, 17):
        for part in ("expand", "depthwise", "project"):
            state |= _conv(weights, f"block_{i}_{part}", f"block_{i}.{part}")
    return state


@register_backbone(INFO)
def build(weights: Path | None, seed: int) -> Backbone:
    """MobileNetV2 with the converted nsfwjs weights (fetched on first use) or ``weights``."""
    from muselab.models.backbones.fetch import load_nsfwjs_weights

    net = MobileNetV2()
    load_nsfwjs_weights(net, weights)
    return net
