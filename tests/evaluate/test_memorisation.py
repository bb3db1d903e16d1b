"""The memorisation check finds copied training images and leaves new ones alone."""

from __future__ import annotations

import numpy as np
import pytest

from muselab.data import ImageDataset
from muselab.errors import DataError
from muselab.evaluate.features import PixelFeatures
from muselab.evaluate.memorisation import contact_sheet, find_copies, nearest


def test_nearest_excludes_self() -> None:
    x = np.array([[0.0], [1.0], [5.0]])
    d, i = nearest(x, x, exclude_self=True)
    np.testing.assert_array_equal(i, [1, 0, 1])
    np.testing.assert_allclose(d, [1, 1, 4])


def test_copies_are_found(emoji_data: ImageDataset) -> None:
    train = emoji_data.images[:200]
    held_out = emoji_data.images[200:240]
    rng = np.random.default_rng(0)
    noisy = np.clip(train[17].astype(np.int16) + rng.integers(-4, 5, train[17].shape), 0, 255)
    generated = np.concatenate([held_out, train[5:6], noisy[None].astype(np.uint8)])
    rep = find_copies(generated, train, PixelFeatures(), threshold=0.2)
    exact, near = rep.matches[40], rep.matches[41]
    assert exact.pixel_train == 5 and exact.pixel_ratio == pytest.approx(0.0, abs=1e-6)
    assert near.pixel_train == 17 and near.feature_train == 17 and near.flagged
    assert exact.flagged and exact.feature_ratio == pytest.approx(0.0, abs=1e-6)
    assert {40, 41} <= {m.index for m in rep.closest(6)}
    # Held-out emoji: the set has a few exact twins (the flags of Norway, Bouvet Island and
    # Svalbard are one image) and near-twins, so a few are flagged, not many.
    assert sum(m.flagged for m in rep.matches[:40]) <= 5
    summary = rep.to_dict()
    assert summary["flagged"] == len(rep.flagged) and summary["n_train"] == 200
    sheet = contact_sheet(rep, generated, train, top=6, columns=3)
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet.shape[1] == 4 + 3 * (3 * 64 + 8)  # 32 px upscaled x2, three per cell


def test_mismatched_sizes_and_tiny_sets(emoji_data: ImageDataset) -> None:
    train = emoji_data.images[:20]
    with pytest.raises(DataError, match="differ in size"):
        find_copies(train[:3, :16, :16], train, PixelFeatures())
    with pytest.raises(DataError, match="at least 1 generated and 2 training"):
        find_copies(train[:3], train[:1], PixelFeatures())
