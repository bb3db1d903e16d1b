"""The :class:`Backbone` contract, its registry and the layers the networks share.

A backbone is a frozen feature network. ``forward(x, layers)`` takes RGB in ``[0, 1]``
(``[B, 3, H, W]``, any ``H, W >= 32``), normalises it inside, never resizes, and
returns the named intermediate activations (computing only as deep as needed).
``pooled(x)`` resizes to the network's ``input_size`` and returns the global-average-
pooled final features ``[B, feature_dim]`` (for FID/KID and the like).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.errors import ConfigError, DataError

logger = logging.getLogger("muselab.backbones")

#: Smallest input side ``forward`` accepts (deeper layers of a net may need more).
MIN_SIDE = 32


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone is, before building it (``muselab backbones list``)."""

    name: str
    in_house: bool
    """True for nets not standard in the literature (scores labelled "in-house")."""
    needs_weights: bool
    """True when the user must pass ``weights=PATH`` (nothing can be fetched)."""
    fetchable: bool
    """True when ``muselab backbones fetch NAME`` can obtain the weights."""
    licence: str
    layers: tuple[str, ...]
    feature_dim: int
    input_size: int
    description: str
    style_layers: tuple[str, ...]
    """Recommended for Gram-matrix style losses (Gatys 2016), shallow to deep."""
    content_layers: tuple[str, ...]
    """Recommended for content / perceptual losses (Johnson 2016)."""


Builder = Callable[[Path | None, int], "Backbone"]
REGISTRY: dict[str, tuple[BackboneInfo, Builder]] = {}


def register_backbone(info: BackboneInfo) -> Callable[[Builder], Builder]:
    """Register a builder ``(weights_path | None, seed) -> Backbone`` under ``info.name``."""

    def wrap(builder: Builder) -> Builder:
        if info.name in REGISTRY:
            raise ValueError(f"backbone {info.name!r} is registered twice")
        REGISTRY[info.name] = (info, builder)
        return builder

    return wrap


class Backbone(nn.Module):
    """A frozen feature network with named layers (see the module docstring)."""

    def __init__(self, info: BackboneInfo) -> None:
        super().__init__()
        self.info = info
        self.name = info.name
        self.in_house = info.in_house
        self.feature_dim = info.feature_dim
        self.input_size = info.input_size
        self.layers = info.layers
        self.style_layers = info.style_layers
        self.content_layers = info.content_layers
        #: Where the weights came from (file, sha256, source package); set by the builder.
        self.provenance: dict[str, Any] = {"backbone": info.name}
        #: Full-fp32 cuDNN convolutions on CUDA (no TF32): features match the CPU and the
        #: reference to ~1e-5. False trades that for speed (TF32 errors reach ~1e-2).
        self.precise = True

    # -- to implement -------------------------------------------------------------------

    def steps(self) -> list[tuple[str, nn.Module]]:
        """The network in order as ``(layer name, module)``; names are :attr:`layers`."""
        raise NotImplementedError

    def normalize(self, x: Tensor) -> Tensor:
        """Map RGB in ``[0, 1]`` to what the weights were trained on (identity here)."""
        return x

    # -- the contract -------------------------------------------------------------------

    def forward(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """Activations ``{layer: [B, C, h, w]}`` of ``x`` ``[B, 3, H, W]`` in ``[0, 1]``."""
        wanted = self._check_layers(layers)
        height, width = self._check_input(x)
        h = self.normalize(x)
        found: dict[str, Tensor] = {}
        with fp32_convolutions(self.precise and x.is_cuda):
            for name, step in self.steps():
                h = self._run_step(name, step, h, (height, width))
                if name in wanted:
                    found[name] = h
                    if len(found) == len(wanted):
                        break
        return {name: found[name] for name in layers}

    def pooled(self, x: Tensor) -> Tensor:
        """Global-average-pooled final features ``[B, feature_dim]`` (``x`` resized first)."""
        self._check_input(x)
        x = resize(x, self.input_size)  # [B, 3, S, S]
        last = self.layers[-1]
        return self.forward(x, [last])[last].mean(dim=(2, 3))  # [B, feature_dim]

    # -- helpers ------------------------------------------------------------------------

    def _check_layers(self, layers: Sequence[str]) -> set[str]:
        if isinstance(layers, str) or not layers:
            raise ConfigError(
                f"backbone {self.name!r}: layers must be a non-empty list of names, got "
                f"{layers!r}"
            )
        unknown = [name for name in layers if name not in self.layers]
        if unknown:
            raise ConfigError(
                f"backbone {self.name!r} has no layer {unknown[0]!r}; its layers are: "
                + ", ".join(self.layers)
            )
        return set(layers)

    def _check_input(self, x: Tensor) -> tuple[int, int]:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(
                f"backbone {self.name!r} expects RGB images as a float tensor [B, 3, H, W] "
                f"in [0, 1], got {shape}"
            )
        if not x.is_floating_point():
            raise ConfigError(
                f"backbone {self.name!r} expects a float tensor in [0, 1], got {x.dtype} "
                "(divide uint8 images by 255)"
            )
        height, width = int(x.shape[2]), int(x.shape[3])
        if min(height, width) < MIN_SIDE:
            raise ConfigError(
                f"backbone {self.name!r}: input {height}x{width} is too small; both sides "
                f"must be at least {MIN_SIDE} (upscale the images first)"
            )
        return height, width

    def _run_step(self, name: str, step: nn.Module, h: Tensor, size: tuple[int, int]) -> Tensor:
        try:
            out: Tensor = step(h)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as exc:
            if min(h.shape[2:]) >= 8:  # not a too-small input: a real error
                raise
            raise ConfigError(
                f"backbone {self.name!r}: input {size[0]}x{size[1]} is too small to reach "
                f"layer {name!r} (the map is {h.shape[2]}x{h.shape[3]} there); use a "
                "shallower layer or a larger image"
            ) from exc
        return out


# ------------------------------------------------------------------------------ layers


@contextlib.contextmanager
def fp32_convolutions(active: bool) -> Iterator[None]:
    """Turn cuDNN's TF32 convolutions off inside (PyTorch's CUDA default is on), then restore."""
    if not active:
        yield
        return
    cudnn = torch.backends.cudnn
    before = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32 = before


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of ``[B, C, H, W]`` to ``size x size`` (as pytorch-fid does)."""
    if x.shape[2] == size and x.shape[3] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def tf_same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad ``x`` as TensorFlow's ``padding="same"`` does (extra pixel bottom/right)."""
    pads: list[int] = []
    for size in (x.shape[3], x.shape[2]):  # F.pad order: width first
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class FrozenBatchNorm2d(nn.Module):
    """Inference-only batch norm (Ioffe & Szegedy 2015): fixed statistics, any mode.

    State keys match :class:`torch.nn.BatchNorm2d` (``weight``, ``bias``, ``running_mean``,
    ``running_var``) so torchvision-format files load.
    """

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)  # [C]
        shift = self.bias - self.running_mean * scale  # [C]
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class ConvBN(nn.Module):
    """Conv (no bias) + frozen batch norm + optional ReLU / ReLU6.

    Keys ``conv.weight``, ``bn.*`` as torchvision's ``BasicConv2d``. ``tf_same`` pads
    like TensorFlow's ``"same"`` at run time (asymmetric for stride 2), otherwise
    ``padding`` is symmetric.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        *,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        groups: int = 1,
        act: str | None = "relu",
        tf_same: bool = False,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups,
                              bias=False)
        self.bn = FrozenBatchNorm2d(cout, eps)
        self.act = act
        self.same_kernel = kernel if tf_same and isinstance(kernel, int) else 0
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """``[B, cin, H, W] -> [B, cout, H', W']``."""
        if self.same_kernel:
            x = tf_same_pad(x, self.same_kernel, self.stride)
        x = self.bn(self.conv(x))
        if self.act == "relu":
            return F.relu(x)
        if self.act == "relu6":
            return F.relu6(x)
        return x


# ------------------------------------------------------------------------------ weights




def read_state_file(path: str | Path, what: str) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors`` or PyTorch file (``torch.load(weights_only=True)``).

    A checkpoint wrapping its weights in ``{"state_dict": ...}`` is unwrapped. Raises a
    :class:`ConfigError` naming ``path`` when it is missing or not a state dict.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{what} weights file {file} does not exist or is not a file")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors each raise their own types
        raise ConfigError(
            f"{what} weights file {file} cannot be read as a PyTorch state dict "
            f"(loaded with weights_only=True): {exc}"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"{what} weights file {file} is not a state dict of tensors")
    return state


def load_checked(
    module: nn.Module,
    state: dict[str, Tensor],
    source: str,
    ignore: Iterable[str] = (),
) -> None:
    """Copy ``state`` into ``module``, naming ``source`` and the first bad key on mismatch.

    Keys starting with a prefix in ``ignore`` (e.g. a classifier head) are skipped;
    ``num_batches_tracked`` entries are always skipped.
    """
    skip = tuple(ignore)
    expected = module.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise ConfigError(
                f"{source}: missing key {key!r} (shape {list(ref.shape)}); this is not the "
                f"expected weights file for this backbone"
            )
        if tuple(state[key].shape) != tuple(ref.shape):
            raise ConfigError(
                f"{source}: key {key!r} has shape {list(state[key].shape)}, expected "
                f"{list(ref.shape)}; this is not the expected weights file for this backbone"
            )
    for key in state:
        if key not in expected and not key.startswith(skip) and "num_batches_tracked" not in key:
            raise ConfigError(
                f"{source}: unexpected key {key!r}; this is not the expected weights file "
                "for this backbone"
            )
    clean = {key: state[key].detach().to(torch.float32) for key in expected}
    module.load_state_dict(clean, strict=True)


def state_from_numpy(arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """Numpy arrays -> contiguous float32 tensors."""
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in
            arrays.items()}


def reference_pattern(size: int) -> np.ndarray:
    """The deterministic test image ``uint8 [size, size, 3]`` (rings, ramps, xor texture).

    Mirrors ``patternImage`` in ``scripts/record_tfjs_reference.mjs`` exactly.
    """
    if size < 1:
        raise DataError(f"reference pattern size must be positive, got {size}")
    y, x = np.mgrid[0:size, 0:size].astype(np.int64)  # [S, S] each
    planes = [((x * x + 2 * y * y) >> 5) + 3 * x + 5 * y * c + 71 * c + ((x ^ y) & 63)
              for c in range(3)]
    return (np.stack(planes, axis=-1) & 255).astype(np.uint8)  # [S, S, 3]
