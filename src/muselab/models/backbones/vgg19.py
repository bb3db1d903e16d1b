"""``vgg19``: VGG-19 (Simonyan & Zisserman 2015), the network of Gatys et al. 2016.

Not fetched: pass a torchvision-format VGG19 state dict (e.g. torchvision's
``vgg19-dcbb9e9d.pth``) as ``weights=PATH``; loaded with ``weights_only=True``. Keys are
``features.N.weight`` / ``features.N.bias`` for the 16 convolutions (``classifier.*`` is
ignored). Input RGB in ``[0, 1]`` is normalised with the ImageNet mean and std.
Layers: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, ... relu5_4, pool5``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from muselab.errors import ConfigError
from muselab.io import sha256_file
from muselab.models.backbones.base import (
    Backbone,
    BackboneInfo,
    load_checked,
    read_state_file,
    register_backbone,
)

#: Convolutions per block (configuration "E" of Simonyan & Zisserman 2015).
BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_names(blocks: tuple[tuple[int, int], ...], pool_last: bool = True) -> list[str]:
    """``conv1_1, relu1_1, ..., pool1, ...``: the names of a VGG-style ``features`` stack."""
    names: list[str] = []
    for b, (_, convs) in enumerate(blocks, start=1):
        for c in range(1, convs + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        if pool_last or b < len(blocks):
            names.append(f"pool{b}")
    return names


def vgg_features(blocks: tuple[tuple[int, int], ...], pool: type[nn.Module] = nn.MaxPool2d,
                 pool_last: bool = True) -> nn.Sequential:
    """3x3 conv + ReLU stacks separated by 2x2 pools, indexed as torchvision's ``features``."""
    layers: list[nn.Module] = []
    cin = 3
    for b, (width, convs) in enumerate(blocks, start=1):
        for _ in range(convs):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU()]
            cin = width
        if pool_last or b < len(blocks):
            layers.append(pool(2, 2))
    return nn.Sequential(*layers)


class ImageNetNormalized(Backbone):
    """A backbone over a ``features`` stack whose input is ImageNet-normalised."""

    features: nn.Sequential
    mean: Tensor
    std: Tensor

    def __init__(self, info: BackboneInfo) -> None:
        super().__init__(info)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` with the ImageNet statistics."""
        return (x - self.mean) / self.std

    def steps(self) -> list[tuple[str, nn.Module]]:
        """``features`` in order, named as :attr:`layers`."""
        return list(zip(self.layers, self.features, strict=True))


LAYERS = tuple(vgg_layer_names(BLOCKS))

INFO = BackboneInfo(
    name="vgg19",
    in_house=False,
    needs_weights=True,
    fetchable=False,
    licence="your file (torchvision VGG19, check its terms)",
    layers=LAYERS,
    feature_dim=512,
    input_size=224,
    description="VGG-19 (Simonyan & Zisserman 2015) from a torchvision-format state dict; "
                "the Gatys 2016 / Johnson 2016 network",
    style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
    content_layers=("relu4_2",),
)


class VGG19(ImageNetNormalized):
    """VGG-19 ``features`` (no classifier)."""

    def __init__(self) -> None:
        super().__init__(INFO)
        self.features = vgg_features(BLOCKS)


@register_backbone(INFO)
def build(weights: Path | None, seed: int) -> Backbone:
    """VGG-19 from the user's torchvision-format state dict."""
    if weights is None:
        raise ConfigError(
            "backbone 'vgg19' needs weights=PATH (--backbone-weights): a torchvision-format "
            "VGG19 state dict such as vgg19-dcbb9e9d.pth, which muselab cannot download"
        )
    path = Path(weights).expanduser()
    net = VGG19()
    load_checked(net, read_state_file(path, INFO.name), str(path), ignore=("classifier.",))
    net.provenance |= {"weights": str(path), "sha256": sha256_file(path)}
    return net
