"""Frozen feature backbones for metrics, perceptual losses and style transfer.

>>> from muselab.models.backbones import load_backbone, list_backbones
>>> net = load_backbone("random", seed=0)                      # doctest: +SKIP
>>> feats = net(images, ["relu1_1", "relu3_1"])                # {layer: [B, C, h, w]}
>>> vec = net.pooled(images)                                   # [B, feature_dim]

Backbones (``docs/backbones.md``): ``inception-v3`` and ``mobilenet-v2`` (ImageNet-
initialised, converted from the tfjs weights in npm ``nsfwjs@4.3.0`` on first use; scores
labelled "in-house"), ``fid-inception`` (your pytorch-fid ``pt_inception-2015-12-05`` file),
``vgg19`` (your torchvision-format VGG19 file) and ``random`` (seeded random weights).
Importing this package registers the networks; it builds and downloads nothing.
"""

from __future__ import annotations

from pathlib import Path

from muselab.errors import ConfigError
from muselab.models.backbones import (  # noqa: F401  (registration side effect)
    fid_inception,
    inception_v3,
    mobilenet_v2,
    random_net,
    vgg19,
)
from muselab.models.backbones.base import REGISTRY, Backbone, BackboneInfo, reference_pattern


def list_backbones() -> list[BackboneInfo]:
    """Every registered backbone, in registration order."""
    return [info for info, _ in REGISTRY.values()]


def get_info(name: str) -> BackboneInfo:
    """The :class:`BackboneInfo` of ``name``, or a :class:`ConfigError` listing the names."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[name][0]


def load_backbone(
    name: str,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
) -> Backbone:
    """Build backbone ``name`` frozen and in eval mode on ``device``.

    ``weights``: the file for ``fid-inception`` / ``vgg19`` (required) or a converted
    ``.safetensors`` for ``inception-v3`` / ``mobilenet-v2`` (default: the data home's,
    fetched and converted on first use). ``seed`` picks the ``random`` network.
    """
    from muselab.device import resolve_device

    get_info(name)
    target = resolve_device(device)
    builder = REGISTRY[name][1]
    net = builder(Path(weights).expanduser() if weights is not None else None, seed)
    net.requires_grad_(False)
    return net.eval().to(target)


__all__ = [
    "Backbone",
    "BackboneInfo",
    "get_info",
    "list_backbones",
    "load_backbone",
    "reference_pattern",
]
