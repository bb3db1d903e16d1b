"""Image and music features: values on hand-made inputs, fallbacks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from muselab.crossmodal.features import image_features, music_features
from muselab.errors import DataError
from muselab.music.tokens import Key, Note, Piece


def _solid(rgb: tuple[int, int, int], size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def test_pure_black_is_achromatic_fallback() -> None:
    f = image_features(_solid((0, 0, 0)))
    assert f.achromatic and f.hue is None
    assert f.lightness == pytest.approx(0.0, abs=1e-6)
    assert f.saturation == pytest.approx(0.0, abs=1e-6)
    assert f.contrast == 0.0 and f.edge_density == 0.0 and f.symmetry == 1.0
    assert f.as_dict()["achromatic"] is True


def test_one_pixel_image_gives_features_not_a_crash() -> None:
    f = image_features(np.array([[[250, 230, 20]]], dtype=np.uint8))
    assert (f.height, f.width) == (1, 1)
    assert f.contrast == 0.0 and f.edge_density == 0.0 and f.symmetry == 1.0
    assert f.hue is not None and f.yellow_blue > 0.5


def test_colour_dimensions_order_images() -> None:
    yellow, blue = image_features(_solid((250, 230, 20))), image_features(_solid((20, 30, 160)))
    assert yellow.lightness > blue.lightness
    assert yellow.yellow_blue > 0 > blue.yellow_blue
    grey = image_features(_solid((128, 128, 128)))
    assert grey.saturation < 0.01 < blue.saturation
    assert 40 < grey.lightness * 100 < 60


def test_edges_contrast_and_symmetry() -> None:
    checker = (np.indices((32, 32)).sum(0) // 4 % 2 * 255).astype(np.uint8)  # [32, 32]
    f = image_features(checker)  # grey accepted
    assert f.edge_density > 0.3 and f.contrast > 0.4
    half = np.zeros((32, 32, 3), np.uint8)
    half[:, :16] = 255
    assert image_features(half).symmetry < 0.1
    assert image_features(np.concatenate([half, half[:, ::-1]], axis=1)).symmetry == 1.0


def test_rgba_is_composited_on_white() -> None:
    clear = np.zeros((8, 8, 4), np.uint8)  # fully transparent
    assert image_features(clear).lightness == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4, 3), np.uint8), np.zeros(5, np.uint8)])
def test_bad_images_raise_a_clear_error(bad: np.ndarray) -> None:
    with pytest.raises(DataError, match="image"):
        image_features(bad)


def test_music_features_of_a_known_piece() -> None:
    notes = [Note(0, 4, 60, 0, 64), Note(4, 4, 64, 0, 96), Note(8, 8, 67, 0, 96)]
    m = music_features(Piece(notes, Key(9, True), (4, 4), 120.0, "folk", n_bars=2))
    assert (m.key, m.mode, m.tempo, m.style, m.bars) == ("A minor", "minor", 120.0, "folk", 2)
    assert m.density == pytest.approx(3 / 8)  # 3 notes in 2 bars of 4 beats
    assert m.register == pytest.approx((60 + 64 + 67) / 3)
    assert m.pitch_range == 7 and m.loudness == pytest.approx(256 / 3)
    assert music_features(Piece(notes), analyse=True).key == "C major"
    with pytest.raises(DataError, match="no music features"):
        music_features(Piece([]))
