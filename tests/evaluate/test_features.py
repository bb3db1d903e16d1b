"""Feature extractors: the registry, the pixels baseline, the content-hash cache, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from muselab.errors import ConfigError, MuselabError
from muselab.evaluate import features as F


def images(n: int = 10, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_registry_names_and_errors(tmp_path: Path) -> None:
    assert {"pixels", "inception-v3", "mobilenet-v2", "fid-inception", "random"} <= set(
        F.extractor_names())
    with pytest.raises(ConfigError, match="--features 'vgg' is not a feature extractor"):
        F.get_extractor("vgg")
    with pytest.raises(ConfigError, match="no such file"):
        F.get_extractor("fid-inception", tmp_path / "missing.pth")
    (tmp_path / "w.pth").write_bytes(b"x")
    with pytest.raises(ConfigError, match="pixels extractor takes no weights"):
        F.get_extractor("pixels", tmp_path / "w.pth")


def test_pixels_are_area_averaged_to_16px() -> None:
    ext = F.get_extractor("pixels")
    x = images(4)
    feats = ext(x)
    assert feats.shape == (4, 768) and ext.dim == 768 and not ext.in_house
    want = x.reshape(4, 16, 2, 16, 2, 3).astype(np.float64).mean((2, 4)) / 255.0  # [4,16,16,3]
    np.testing.assert_allclose(feats, want.transpose(0, 3, 1, 2).reshape(4, -1), atol=1e-6)


def test_batched_extraction_equals_one_call() -> None:
    ext, x = F.get_extractor("pixels"), images(10)
    np.testing.assert_array_equal(F.extract(ext, x, batch=3), ext(x))


def test_reference_features_are_cached_by_content(tmp_home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ext, x = F.get_extractor("pixels"), images(6)
    first = F.cached_extract(ext, x)
    assert len(list((tmp_home / "cache" / "features").glob("*.npy"))) == 1

    def boom(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("extracted again")

    monkeypatch.setattr(F, "extract", boom)
    np.testing.assert_array_equal(F.cached_extract(ext, x), first)
    with pytest.raises(AssertionError):  # other content: another key
        F.cached_extract(ext, images(6, seed=1))


def test_random_backbone_features() -> None:
    pytest.importorskip("muselab.models.backbones")
    ext = F.get_extractor("random", device="cpu")
    feats = F.extract(ext, images(5, size=48), batch=2)
    assert feats.shape == (5, ext.dim) and np.isfinite(feats).all()
    np.testing.assert_allclose(feats, F.get_extractor("random", device="cpu")(images(5, 48)),
                               rtol=1e-4, atol=1e-5)


def test_feature_weights_of_the_wrong_shape_are_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("muselab.models.backbones")
    bad = tmp_path / "not-inception.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(4, 3, 3, 3)}, bad)
    with pytest.raises(MuselabError, match=str(bad.name)):
        F.get_extractor("fid-inception", bad, device="cpu")
