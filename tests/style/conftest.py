"""Fixtures for the style tests: real small images, the fetched ONNX stylizer, a feature net."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from torch import nn


@pytest.fixture(scope="session")
def style_home() -> Path:
    """A data home with the arbitrary stylizer's ONNX files fetched (once per machine)."""
    from muselab.style.arbitrary import fetch_models

    default = os.environ.get("MUSELAB_HOME") or str(Path.home() / ".cache" / "muselab")
    home = Path(os.environ.get("MUSELAB_TEST_HOME") or default).expanduser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(home))
        fetch_models()
    return home


@pytest.fixture
def stylizer(style_home: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from muselab.style.arbitrary import ArbitraryStylizer

    monkeypatch.setenv("MUSELAB_HOME", str(style_home))
    return ArbitraryStylizer(threads=1)


def photo(name: str, side: int) -> np.ndarray:
    """A scikit-image sample photo, centre-cropped and resized to ``side``."""
    import skimage.data

    from muselab.style.common import resize

    img = getattr(skimage.data, name)()
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return resize(np.ascontiguousarray(img), (side, side))


@pytest.fixture
def feature_net() -> nn.Module:
    """The contract's seeded "random" backbone (Ustyuzhaninov 2016), frozen, on the CPU."""
    from muselab.models.backbones import load_backbone

    return load_backbone("random", device="cpu")
