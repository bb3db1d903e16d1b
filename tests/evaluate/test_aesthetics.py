"""Aesthetic measures on images with known answers."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from muselab.errors import ConfigError
from muselab.evaluate import aesthetics as A
from muselab.evaluate.aesthetics import (
    aesthetic_matrix,
    aesthetic_scores,
    brightness,
    colourfulness,
    complexity,
    contrast,
    harmony,
    measure_names,
    saturation,
    sharpness,
    symmetry_lr,
    symmetry_tb,
    thirds,
)


def hsv_image(hues: list[float], size: int = 24) -> np.ndarray:
    """uint8 [size, size * len(hues), 3]: vertical stripes of fully saturated hues (degrees)."""
    cols = [np.array(colorsys.hsv_to_rgb(h / 360.0, 1.0, 1.0)) * 255 for h in hues]
    row = np.repeat(np.round(np.stack(cols)).astype(np.uint8), size, axis=0)  # [W, 3]
    return np.broadcast_to(row, (size, *row.shape)).copy()


def noise(n: int = 4, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_grey_image_has_the_neutral_values() -> None:
    grey = np.full((2, 32, 32, 3), 128, np.uint8)
    s = aesthetic_scores(grey)
    for name in ("colourfulness", "contrast", "sharpness", "saturation"):
        assert np.all(s[name] == 0.0), name
    for name in ("harmony", "symmetry_lr", "symmetry_tb"):
        assert np.allclose(s[name], 1.0), name
    assert np.allclose(s["brightness"], 128 / 255)
    assert np.allclose(s["thirds"], A.thirds_weights(32, 32).mean())
    assert np.all(s["complexity"] < 0.05)


def test_colourfulness_matches_hand_computation() -> None:
    halves = np.zeros((8, 8, 3), np.uint8)
    halves[:, :4, 0] = 255  # red | green: rg = +-255 (sd 255), yb = 127.5 (mean)
    halves[:, 4:, 1] = 255
    assert colourfulness(halves)[0] == pytest.approx(255 + 0.3 * 127.5)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert colourfulness(red)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_contrast_and_brightness_of_black_and_white() -> None:
    img = np.zeros((1, 10, 10, 3), np.uint8)
    img[:, :, 5:] = 255
    assert contrast(img)[0] == pytest.approx(0.5)
    assert brightness(img)[0] == pytest.approx(0.5)
    assert brightness(np.full((1, 4, 4, 3), 255, np.uint8))[0] == pytest.approx(1.0)


def test_sharpness_of_a_checkerboard_and_of_blur() -> None:
    yy, xx = np.mgrid[:16, :16]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    board = np.repeat(board[None, :, :, None], 3, axis=3)
    assert sharpness(board)[0] == pytest.approx(16.0)  # Laplacian is +-4 everywhere
    img = noise(1, 32)
    blurred = ((img[:, :-1, :-1].astype(int) + img[:, 1:, 1:] + img[:, 1:, :-1] + img[:, :-1, 1:])
               // 4).astype(np.uint8)
    assert sharpness(blurred)[0] < 0.5 * sharpness(img[:, :-1, :-1])[0]


def test_harmony_of_hue_sets() -> None:
    one = hsv_image([200])
    complementary = hsv_image([30, 210])  # Matsuda's I template fits exactly
    wheel = hsv_image([h + 0.5 for h in range(360)], size=4)
    triad = hsv_image([0, 120, 240])
    assert harmony(one)[0] == pytest.approx(1.0)
    assert harmony(complementary)[0] == pytest.approx(1.0)
    assert harmony(wheel)[0] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < harmony(triad)[0] < 0.8
    assert A.uniform_deviation() == pytest.approx(10.37, abs=0.01)  # template X, by hand


def test_symmetry_of_mirrored_images_and_noise() -> None:
    img = noise(1, 32)
    mirrored = np.concatenate([img[:, :, :16], img[:, :, :16][:, :, ::-1]], axis=2)
    flipped = np.concatenate([img[:, :16], img[:, :16][:, ::-1]], axis=1)
    assert symmetry_lr(mirrored)[0] == pytest.approx(1.0)
    assert symmetry_tb(flipped)[0] == pytest.approx(1.0)
    assert abs(symmetry_lr(noise(8))).max() < 0.1
    ramp = np.broadcast_to(np.linspace(0, 255, 32).astype(np.uint8)[None, None, :, None],
                           (1, 32, 32, 3))
    assert symmetry_lr(ramp)[0] == pytest.approx(-1.0, abs=1e-3)  # anti-symmetric
    assert symmetry_tb(ramp)[0] == pytest.approx(1.0)


def test_complexity_orders_noise_emoji_and_flat(emoji_data) -> None:  # type: ignore[no-untyped-def]
    flat = np.full((1, 32, 32, 3), 200, np.uint8)
    c_noise = complexity(noise(2, 32))
    c_emoji = complexity(emoji_data.images[:16])
    assert np.all(c_noise > 0.95)
    assert complexity(flat)[0] < 0.05
    assert np.all((c_emoji > complexity(flat)[0]) & (c_emoji < c_noise.min()))


def test_thirds_prefers_a_dot_on_a_power_point() -> None:
    on = np.zeros((1, 60, 60, 3), np.uint8)
    centre = on.copy()
    on[:, 18:22, 18:22] = 255  # around (1/3, 1/3)
    centre[:, 28:32, 28:32] = 255
    assert thirds(on)[0] > 0.8
    assert thirds(centre)[0] < 0.1


def test_saturation_of_pure_and_pale_colours() -> None:
    assert saturation(hsv_image([0, 120]))[0] == pytest.approx(1.0)
    pale = np.full((1, 4, 4, 3), (255, 128, 128), np.uint8)
    assert saturation(pale)[0] == pytest.approx(127 / 255)


def test_batches_equal_single_images_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(A, "CHUNK", 3)
    imgs = noise(7, 16, seed=3)
    imgs[2] = 90
    batch = aesthetic_matrix(imgs)
    assert batch.shape == (7, len(measure_names()))
    single = np.stack([aesthetic_matrix(img) for img in imgs])[:, 0]
    np.testing.assert_allclose(batch, single, rtol=1e-12)
    assert np.isfinite(batch).all()


def test_bad_input_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="uint8"):
        colourfulness(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ConfigError, match="uint8"):
        aesthetic_scores(np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(ConfigError, match="3x3"):
        sharpness(np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(ConfigError, match="unknown aesthetic measure 'beauty'"):
        aesthetic_scores(noise(1, 8), ["beauty"])
