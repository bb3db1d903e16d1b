"""InceptionV3 (Szegedy et al. 2016): the trunk of ``inception-v3`` and ``fid-inception``.

Module and state-dict names follow torchvision / pytorch-fid (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean`` ...). Pooling branches average with
``count_include_pad=False``, as TensorFlow's ``"same"`` pooling does, which both the Keras
graph of nsfwjs and the 2015 TF graph behind FID use. The FID graph differs in one place:
the pool branch of ``Mixed_7c`` is a max pool (pytorch-fid's ``FIDInceptionE_2``).

``inception-v3``: the ``inception_v3`` model of npm ``nsfwjs@4.3.0``, i.e. Keras' ImageNet
InceptionV3 with ``conv2d_56`` and later fine-tuned as a 5-class NSFW classifier, stored
8-bit quantised; input RGB in ``[0, 1]`` fed as is (as nsfwjs does); head dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.models.backbones.base import Backbone, BackboneInfo, ConvBN, register_backbone
from muselab.models.backbones.tfjs import batchnorm, conv_kernel

LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
          "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
          "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
STYLE_LAYERS = ("Conv2d_2b_3x3", "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5d", "Mixed_6b")
CONTENT_LAYERS = ("Mixed_5d",)


def _conv(cin: int, cout: int, kernel: int | tuple[int, int],
          stride: int = 1, padding: int | tuple[int, int] = 0) -> ConvBN:
    """torchvision's ``BasicConv2d``: conv (no bias) + BN (eps 1e-3) + ReLU."""
    return ConvBN(cin, cout, kernel, stride=stride, padding=padding, act="relu")


def _avg3(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool, padding excluded from the mean (TF ``"same"``)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _conv(cin, 64, 1)
        self.branch5x5_1 = _conv(cin, 48, 1)
        self.branch5x5_2 = _conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _conv(cin, 64, 1)
        self.branch3x3dbl_2 = _conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _conv(96, 96, 3, padding=1)
        self.branch_pool = _conv(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, cin, 35, 35] -> [B, 224 + pool_features, 35, 35]``."""
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _conv(cin, 64, 1)
        self.branch3x3dbl_2 = _conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _conv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, cin, H, W] -> [B, 480 + cin, (H-3)/2+1, (W-3)/2+1]``."""
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _conv(cin, 192, 1)
        self.branch7x7_1 = _conv(cin, c7, 1)
        self.branch7x7_2 = _conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _conv(cin, c7, 1)
        self.branch7x7dbl_2 = _conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 768, 17, 17] -> [B, 768, 17, 17]``."""
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _conv(cin, 192, 1)
        self.branch3x3_2 = _conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _conv(cin, 192, 1)
        self.branch7x7x3_2 = _conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _conv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 768, 17, 17] -> [B, 1280, 8, 8]``."""
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with expanded filter banks (1x3 and 3x1 side by side)."""

    def __init__(self, cin: int, max_pool: bool = False) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _conv(cin, 320, 1)
        self.branch3x3_1 = _conv(cin, 384, 1)
        self.branch3x3_2a = _conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _conv(cin, 448, 1)
        self.branch3x3dbl_2 = _conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, cin, 8, 8] -> [B, 2048, 8, 8]``."""
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class _MaxPool(nn.Module):
    """3x3 stride-2 max pool, no padding."""

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W] -> [B, C, (H-3)/2+1, (W-3)/2+1]``."""
        return F.max_pool2d(x, 3, stride=2)


class InceptionV3(Backbone):
    """The InceptionV3 trunk up to ``Mixed_7c`` (2048 ch); no auxiliary or final classifier.

    ``fid=True`` builds the FID variant (max pool in ``Mixed_7c``'s pool branch). The
    creation order of the convolutions is Keras' ``conv2d_1`` .. ``conv2d_94`` order.
    """

    def __init__(self, info: BackboneInfo, fid: bool = False) -> None:
        super().__init__(info)
        self.Conv2d_1a_3x3 = _conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _conv(32, 64, 3, padding=1)
        self.maxpool1 = _MaxPool()
        self.Conv2d_3b_1x1 = _conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _conv(80, 192, 3)
        self.maxpool2 = _MaxPool()
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=fid)

    def steps(self) -> list[tuple[str, nn.Module]]:
        """Layers in order."""
        return [(name, getattr(self, name)) for name in LAYERS]


def keras_to_state(net: InceptionV3, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras ``conv2d_k`` / ``batch_normalization_k`` -> ``net``'s keys, k in creation order."""
    convs = [name for name, m in net.named_modules() if isinstance(m, ConvBN)]
    state: dict[str, np.ndarray] = {}
    for k, prefix in enumerate(convs, start=1):
        state[f"{prefix}.conv.weight"] = conv_kernel(weights[f"conv2d_{k}/kernel"])
        state |= batchnorm(weights, f"batch_normalization_{k}", f"{prefix}.bn")
    return state


INFO = BackboneInfo(
    name="inception-v3",
    in_house=True,
    needs_weights=False,
    fetchable=True,
    licence="MIT (npm nsfwjs@4.3.0); ImageNet-initialised Keras weights, NSFW-fine-tuned",
    layers=LAYERS,
    feature_dim=2048,
    input_size=299,
    description="InceptionV3 (Szegedy 2016), ImageNet-initialised, NSFW-fine-tuned; "
                "converted from the tfjs weights in npm nsfwjs@4.3.0",
    style_layers=STYLE_LAYERS,
    content_layers=CONTENT_LAYERS,
)


@register_backbone(INFO)
def build(weights: Path | None, seed: int) -> Backbone:
    """InceptionV3 with the converted nsfwjs weights (fetched on first use) or ``weights``."""
    from muselab.models.backbones.fetch import load_nsfwjs_weights

    net = InceptionV3(INFO)
    load_nsfwjs_weights(net, weights)
    return net
