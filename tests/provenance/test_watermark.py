"""The invisible watermark on a real 384 px photo: invisible (PSNR), deterministic, and
readable after JPEG q75, a 0.5x resize and a 10 % crop (bit accuracy >= 0.9 and the
64-bit id recovered); never read from an unmarked photo."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from muselab.provenance import watermark as wm
from muselab.provenance.attacks import half, jpeg75
from tests.provenance.conftest import photo

WORK_ID = 0x0123_4567_89AB_CDEF


def crop10(a: np.ndarray) -> np.ndarray:
    """Cut 10 % off each dimension (an off-centre window, so the tile phase moves)."""
    h, w = a.shape[:2]
    return a[h // 20 + 7 : h // 20 + 7 + h * 9 // 10, w // 30 : w // 30 + w * 9 // 10]


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    img = photo("astronaut.png", 384)
    return img, wm.embed(img, WORK_ID)


def test_invisible_and_deterministic(pair: tuple[np.ndarray, np.ndarray]) -> None:
    img, marked = pair
    assert marked.shape == img.shape and marked.dtype == np.uint8
    assert wm.psnr(img, marked) > 37.0  # 37.96 dB measured on this busy crop
    assert np.array_equal(wm.embed(img, WORK_ID), marked)  # same input, same pixels
    assert not np.array_equal(wm.embed(img, WORK_ID + 1), marked)


@pytest.mark.parametrize(("attack", "scale"), [(lambda a: a, 1.0), (jpeg75, 1.0), (half, 0.5),
                                               (crop10, 1.0)],
                         ids=["none", "jpeg75", "half", "crop10"])
def test_survives_attacks(pair: tuple[np.ndarray, np.ndarray],
                          attack: Callable[[np.ndarray], np.ndarray], scale: float) -> None:
    reading = wm.extract(attack(pair[1]))
    accuracy = float((reading.bits == wm.code_bits(WORK_ID)).mean())
    assert accuracy >= 0.9, accuracy
    assert reading.work_id == WORK_ID
    assert reading.pilot > 0.3
    assert abs(reading.scale - scale) < 0.01  # the resize was found by the scale search


def test_unmarked_photo_reads_nothing(pair: tuple[np.ndarray, np.ndarray]) -> None:
    reading = wm.extract(pair[0], search=False)
    assert reading.work_id is None and reading.pilot < 0.3


def test_small_images_are_refused() -> None:
    small = photo("astronaut.png", 128)
    assert not wm.can_embed(small)
    with pytest.raises(ValueError, match="256 px"):
        wm.embed(small, 1)


def test_alpha_and_grey_images() -> None:
    img = photo("coffee.png", 256)
    rgba = np.concatenate([img, np.full((*img.shape[:2], 1), 200, np.uint8)], axis=2)
    out = wm.embed(rgba, WORK_ID)
    assert np.array_equal(out[..., 3], rgba[..., 3])  # alpha untouched
    assert wm.extract(out[..., :3], search=False).work_id == WORK_ID
    grey = img[..., :1].copy()
    assert wm.extract(wm.embed(grey, WORK_ID), search=False).work_id == WORK_ID
