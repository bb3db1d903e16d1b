"""Small building blocks shared by the convolutional models (DCGAN, VAE).

Everything here is used by more than one model; model-specific wiring lives in
:mod:`muselab.models.dcgan` and :mod:`muselab.models.vae`.

* :class:`ConvDecoder` -- vector -> 4x4 map -> upsampling stages -> image in [-1, 1].
  The DCGAN generator and the VAE decoder.
* :class:`ConvEncoder` -- image -> strided-conv stages -> 4x4 feature map.
  The DCGAN discriminator trunk and the VAE encoder.
* :func:`init_weights` -- the N(0, 0.02) initialisation of Radford et al. 2016.
* :func:`check_shape`, :func:`count_parameters` and the config field checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from muselab.errors import ConfigError

Norm = Literal["batch", "layer", "group", "none"]
Activation = Callable[[], nn.Module]

START_RES = 4  # every model starts (G) or ends (D) at a 4x4 feature map (Radford et al. 2016)


# --------------------------------------------------------------------------- config checks


def check_choice(owner: str, name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    if not any(type(value) is type(a) and value == a for a in allowed):
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{owner}.{name} must be one of {choices}; got {value!r}")


def check_int(
    owner: str, name: str, value: object, minimum: int, maximum: int | None = None
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an int in ``[minimum, maximum]``."""
    upper = "" if maximum is None else f" and <= {maximum}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}{upper}; got {value!r}")


def check_float(owner: str, name: str, value: object, minimum: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite real number >= ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ConfigError(f"{owner}.{name} must be a finite number >= {minimum}; got {value!r}")


def check_bool(owner: str, name: str, value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} must be true or false; got {value!r}")


# --------------------------------------------------------------------------- helpers


def check_shape(t: Tensor, expected: Sequence[int | None], name: str) -> None:
    """Raise ``ValueError`` unless ``t.shape`` matches ``expected`` (None = any size).

    Used at module boundaries, as StyleGAN2-ADA does with ``misc.assert_shape``.
    """
    ok = t.ndim == len(expected) and all(
        e is None or s == e for s, e in zip(t.shape, expected, strict=True)
    )
    if not ok:
        want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise ValueError(f"{name} must have shape {want}; got {list(t.shape)}")


def check_labels(y: Tensor | None, batch: int, num_classes: int, name: str) -> None:
    """Check the class labels passed to a (possibly) class-conditional module."""
    if num_classes == 0:
        if y is not None:
            raise ValueError(f"{name} is unconditional (num_classes=0) but labels were given")
        return
    if y is None:
        raise ValueError(f"{name} is class-conditional (num_classes={num_classes}); pass labels y")
    check_shape(y, (batch,), f"{name} labels y")
    if y.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} labels y must be integer class ids; got dtype {y.dtype}")


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016, section 4): weights ~ N(0, 0.02).

    Conv, transposed conv, linear and embedding weights get N(0, 0.02) and zero bias;
    affine norm layers get scale ~ N(1, 0.02) and zero shift (as in the PyTorch DCGAN
    example). Use as ``model.apply(init_weights)``.
    """
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)
        bias = getattr(module, "bias", None)
        if bias is not None:
            nn.init.zeros_(bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def stage_resolutions(resolution: int) -> list[int]:
    """Resolutions of the stages above 4x4, finest last: 32 -> [8, 16, 32]."""
    levels = int(math.log2(resolution // START_RES))
    if START_RES * 2**levels != resolution:
        raise ValueError(f"resolution must be 4 times a power of two; got {resolution}")
    return [START_RES * 2**i for i in range(1, levels + 1)]


def width_at(res: int, top_res: int, width: int, max_width: int) -> int:
    """Channels at ``res``: ``width`` at ``top_res``, doubling per halving, capped."""
    return min(width * (top_res // res), max_width)


# --------------------------------------------------------------------------- blocks


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """Normalisation layer by name.

    ``batch``: BatchNorm (Ioffe & Szegedy 2015); ``layer``: GroupNorm with one group, i.e.
    layer norm over (C, H, W) (Ba et al. 2016; used in the WGAN-GP critic, Gulrajani 2017);
    ``group``: GroupNorm with up to 32 groups (Wu & He 2018); ``none``: identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be one of 'batch', 'layer', 'group', 'none'; got {kind!r}")


def conv_block(in_ch: int, out_ch: int, norm: Norm, act: Activation) -> nn.Sequential:
    """3x3 conv (stride 1) + norm + activation; the ``depth`` blocks of both nets."""
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=norm == "none")
    return nn.Sequential(conv, make_norm(norm, out_ch), act())


def up_block(in_ch: int, out_ch: int, norm: Norm, act: Activation) -> nn.Sequential:
    """Double the resolution: nearest-neighbour upsample + 3x3 conv + norm + activation.

    Resize-then-convolve instead of a stride-2 transposed conv avoids the checkerboard
    artefacts of uneven kernel overlap (Odena, Dumoulin & Olah 2016, "Deconvolution and
    Checkerboard Artifacts", Distill).
    """
    upsample = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(upsample, *conv_block(in_ch, out_ch, norm, act))


def down_block(in_ch: int, out_ch: int, norm: Norm, act: Activation) -> nn.Sequential:
    """Halve the resolution: 4x4 conv with stride 2 + norm + activation (Radford 2016)."""
    conv = nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=norm == "none")
    return nn.Sequential(conv, make_norm(norm, out_ch), act())


class ConvDecoder(nn.Module):
    """Vector -> image in [-1, 1] (the DCGAN generator body and the VAE decoder).

    ``Linear`` projection to a 4x4 map ("project and reshape", Radford 2016), then one
    :func:`up_block` per doubling, each followed by ``depth`` :func:`conv_block` s, then a
    3x3 conv to ``channels`` and tanh. Channels are ``width`` at the output resolution and
    double per halving of resolution, capped at ``max_width``.
    """

    def __init__(
        self,
        in_dim: int,
        resolution: int,
        width: int,
        max_width: int,
        depth: int,
        norm: Norm,
        act: Activation,
        channels: int,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.resolution = resolution
        self.channels = channels
        self.start_ch = width_at(START_RES, resolution, width, max_width)
        self.project = nn.Linear(in_dim, self.start_ch * START_RES**2, bias=norm == "none")
        self.start = nn.Sequential(make_norm(norm, self.start_ch), act())
        stages: list[nn.Module] = []
        ch = self.start_ch
        for res in stage_resolutions(resolution):
            out_ch = width_at(res, resolution, width, max_width)
            blocks = [up_block(ch, out_ch, norm, act)]
            blocks += [conv_block(out_ch, out_ch, norm, act) for _ in range(depth)]
            stages.append(nn.Sequential(*blocks))
            ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.to_image = nn.Conv2d(ch, channels, 3, padding=1)

    def forward(self, v: Tensor) -> Tensor:
        """Map ``v`` [B, in_dim] to images [B, channels, R, R] in [-1, 1]."""
        check_shape(v, (None, self.in_dim), "decoder input")
        h = self.project(v)  # [B, C0 * 16]
        h = h.view(v.shape[0], self.start_ch, START_RES, START_RES)  # [B, C0, 4, 4]
        h = self.start(h)  # [B, C0, 4, 4]
        h = self.stages(h)  # [B, width, R, R]
        return torch.tanh(self.to_image(h))  # [B, channels, R, R]


class ConvEncoder(nn.Module):
    """Image -> 4x4 feature map (the DCGAN discriminator trunk and the VAE encoder).

    One :func:`down_block` per halving from R to 4, each followed by ``depth``
    :func:`conv_block` s. Channels are ``width`` after the first (R -> R/2) stage and
    double per halving, capped at ``max_width``. The first stage has no norm layer
    (Radford 2016: normalising the input layer of D caused sample oscillation).
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        width: int,
        max_width: int,
        depth: int,
        norm: Norm,
        act: Activation,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.resolution = resolution
        stages: list[nn.Module] = []
        ch = channels
        out_res = [res // 2 for res in reversed(stage_resolutions(resolution))]  # R/2 ... 4
        for i, res in enumerate(out_res):
            # widths are relative to R/2, the finest feature map of the encoder
            out_ch = width_at(res, resolution // 2, width, max_width)
            blocks = [down_block(ch, out_ch, "none" if i == 0 else norm, act)]
            blocks += [conv_block(out_ch, out_ch, norm, act) for _ in range(depth)]
            stages.append(nn.Sequential(*blocks))
            ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.out_ch = ch
        self.out_features = ch * START_RES**2

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``x`` [B, C, R, R] to features [B, out_ch, 4, 4]."""
        r = self.resolution
        check_shape(x, (None, self.channels, r, r), "encoder input")
        return self.stages(x)  # [B, out_ch, 4, 4]
