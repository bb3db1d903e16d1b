"""Loading folders of images: formats, compositing, fitting, caching, bad files."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import muselab.data.imagefolder as imagefolder
from muselab.data import load_images
from muselab.errors import ConfigError, DataError

BG = (10, 200, 30)


def solid(path: Path, colour: tuple[int, ...], size: tuple[int, int] = (16, 16), **kw: Any) -> Path:
    """Write a solid-colour image (mode from the colour's length) and return its path."""
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[len(colour)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if len(colour) > 1 else colour[0]).save(path, **kw)
    return path


def two_frame_gif(path: Path) -> Path:
    """P-mode GIF: frame 0 blue with a transparent top-left quarter, frame 1 red."""
    first = Image.new("P", (16, 16), 1)
    first.putpalette([0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * (256 - 3) * 3)
    first.paste(0, (0, 0, 8, 8))
    second = Image.new("P", (16, 16), 2)
    second.putpalette(first.getpalette() or [])
    first.save(path, save_all=True, append_images=[second], transparency=0, duration=100)
    return path


def stripes(path: Path) -> Path:
    """40x20 RGB: red | green (the centred 20x20 square) | blue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)
    arr[:, 10:30] = (0, 255, 0)
    arr[:, 30:] = (0, 0, 255)
    Image.fromarray(arr).save(path)
    return path


def truncated_png(path: Path) -> Path:
    """A noisy PNG cut to half its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder with every supported format, nested folders and things to ignore."""
    root = tmp_path / "mixed"
    root.mkdir()
    solid(root / "a_rgba.png", (255, 0, 0, 0))
    two_frame_gif(root / "b_anim.gif")
    solid(root / "c_grey.jpg", (128,), quality=95)
    solid(root / "d_wide.webp", (0, 0, 255), size=(32, 16), lossless=True)
    solid(root / "e.bmp", (255, 255, 0))
    solid(root / "nested" / "deeper" / "f.PNG", (0, 255, 255))
    solid(root / ".hidden.png", (1, 1, 1))
    solid(root / ".git" / "g.png", (1, 1, 1))
    (root / "notes.txt").write_text("not an image")
    return root


def test_mixed_folder_shapes_and_order(mixed: Path, tmp_home: Path) -> None:
    ds = load_images(mixed, 8, progress=False)
    assert ds.files == [
        "a_rgba.png",
        "b_anim.gif",
        "c_grey.jpg",
        "d_wide.webp",
        "e.bmp",
        "nested/deeper/f.PNG",
    ]
    assert ds.images.shape == (6, 8, 8, 3) and ds.images.dtype == np.uint8
    assert len(ds) == 6 and ds.bad == []
    assert ds.labels is None and ds.class_names == [] and ds.captions is None
    assert ds.source == str(mixed.resolve())


def test_transparency_composited_on_background(mixed: Path, tmp_home: Path) -> None:
    ds = load_images(mixed, 8, background=BG, progress=False)
    rgba, gif = ds.images[0], ds.images[1]
    assert (rgba == BG).all()  # fully transparent red -> background
    assert gif[0, 0].tolist() == list(BG)  # transparent palette index, first frame
    assert gif[7, 7].tolist() == [0, 0, 255]  # first frame is blue, not the red second


def test_greyscale_and_colours(mixed: Path, tmp_home: Path) -> None:
    ds = load_images(mixed, 8, progress=False)
    grey = ds.images[2].astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert abs(grey.mean() - 128) <= 2
    assert (ds.images[4] == (255, 255, 0)).all()
    assert (ds.images[5] == (0, 255, 255)).all()


def test_crop_vs_pad_geometry(tmp_path: Path, tmp_home: Path) -> None:
    stripes(tmp_path / "s" / "stripes.png")
    crop = load_images(tmp_path / "s", 10, fit="crop", progress=False).images[0].astype(int)
    # the centred square is all green; only the outermost columns see the stripes
    assert (np.abs(crop[:, 1:9] - (0, 255, 0)) <= 3).all()
    pad = load_images(tmp_path / "s", 10, fit="pad", background=BG, progress=False).images[0]
    # 40x20 -> 10x5, pasted at rows 2..6; the rest is background
    for row in (0, 1, 7, 8, 9):
        assert (pad[row] == BG).all()
    middle = pad[4].astype(int)
    assert (np.abs(middle[1] - (255, 0, 0)) <= 6).all()
    assert (np.abs(middle[5] - (0, 255, 0)) <= 6).all()
    assert (np.abs(middle[8] - (0, 0, 255)) <= 6).all()


def test_sixteen_bit_grey_is_scaled(tmp_path: Path, tmp_home: Path) -> None:
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "g16.png")
    ds = load_images(tmp_path, 4, progress=False)
    assert (ds.images == 128).all()


def test_second_load_uses_cache_without_decoding(
    mixed: Path, tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_images(mixed, 8, progress=False)
    assert list((tmp_home / "cache" / "images").glob("*.npz"))

    def boom(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded again despite a cache hit")

    monkeypatch.setattr(imagefolder, "decode_image", boom)
    second = load_images(mixed, 8, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    assert second.files == first.files


def test_cache_invalidated_by_mtime_and_options(
    mixed: Path, tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_images(mixed, 8, progress=False)
    calls: list[str] = []
    real = imagefolder.decode_image

    def counting(path: str | os.PathLike[str], *args: object, **kwargs: object) -> np.ndarray:
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(imagefolder, "decode_image", counting)
    st = os.stat(mixed / "e.bmp")
    os.utime(mixed / "e.bmp", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    load_images(mixed, 8, progress=False)
    assert len(calls) == 6
    load_images(mixed, 8, progress=False)
    assert len(calls) == 6  # cached again
    load_images(mixed, 8, fit="pad", progress=False)
    assert len(calls) == 12


def test_bad_files_are_skipped_and_reported(
    tmp_path: Path, tmp_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(18):
        solid(tmp_path / f"ok{i:02d}.png", (i, i, i))
    truncated_png(tmp_path / "sub" / "half.png")
    (tmp_path / "text.png").write_text("this is not a PNG")
    with caplog.at_level(logging.WARNING, logger="muselab.data"):
        ds = load_images(tmp_path, 8, max_bad_fraction=0.2, progress=False)
    assert len(ds) == 18
    reasons = {b.path: b.reason for b in ds.bad}
    assert reasons["sub/half.png"] == "truncated PNG: image file is truncated"
    assert reasons["text.png"].startswith("not an image")
    assert "half.png" in caplog.text and "text.png" in caplog.text
    # the bad list comes back from the cache too
    assert load_images(tmp_path, 8, max_bad_fraction=0.2, progress=False).bad == ds.bad


def test_too_many_bad_files(tmp_path: Path, tmp_home: Path) -> None:
    solid(tmp_path / "a.png", (1, 2, 3))
    solid(tmp_path / "b.png", (1, 2, 3))
    truncated_png(tmp_path / "c.png")
    (tmp_path / "d.png").write_text("nope")
    with pytest.raises(DataError, match=r"2 of 4 .*50\.0%.*c\.png"):
        load_images(tmp_path, 8, progress=False)
    assert len(load_images(tmp_path, 8, max_bad_fraction=0.5, progress=False)) == 2


def test_decompression_bomb_is_a_bad_file(
    tmp_path: Path, tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    solid(tmp_path / "small.png", (0, 0, 0), size=(8, 8))
    solid(tmp_path / "warn.png", (0, 0, 0), size=(12, 12))  # over the limit: warning
    solid(tmp_path / "error.png", (0, 0, 0), size=(20, 20))  # over twice the limit: error
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    ds = load_images(tmp_path, 8, max_bad_fraction=1.0, progress=False)
    assert ds.files == ["small.png"]
    assert sorted(b.path for b in ds.bad) == ["error.png", "warn.png"]
    assert all(b.reason.startswith("decompression bomb") for b in ds.bad)


def test_all_bad_names_folder(tmp_path: Path, tmp_home: Path) -> None:
    (tmp_path / "x.png").write_text("nope")
    with pytest.raises(DataError, match="no usable images") as info:
        load_images(tmp_path, 8, max_bad_fraction=1.0, progress=False)
    assert str(tmp_path.resolve()) in str(info.value)


def test_empty_folder(tmp_path: Path, tmp_home: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no images found") as info:
        load_images(tmp_path, 8, progress=False)
    assert str(tmp_path.resolve()) in str(info.value)


def test_missing_folder_and_file_path(tmp_path: Path, tmp_home: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_images(missing, 8, progress=False)
    assert str(missing) in str(info.value)
    afile = solid(tmp_path / "one.png", (0, 0, 0))
    with pytest.raises(DataError, match="is a file, not a folder") as info:
        load_images(afile, 8, progress=False)
    assert str(afile) in str(info.value)


def test_unknown_name(tmp_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    expected = "no data set or folder named 'xyz' (built-in sets: digits, emoji, emoji-twitter)"
    with pytest.raises(DataError) as info:
        load_images("xyz", 8, progress=False)
    assert str(info.value) == expected


def test_subfolders_become_classes_and_limit(tmp_path: Path, tmp_home: Path) -> None:
    for name in ("dogs/d1.png", "cats/c1.png", "cats/c2.png", "dogs/d0.png"):
        solid(tmp_path / name, (0, 0, 0))
    ds = load_images(tmp_path, 4, progress=False)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.labels is not None and ds.labels.tolist() == [0, 0, 1, 1]
    assert ds.labels.dtype == np.int64
    assert load_images(tmp_path, 4, limit=3, progress=False).files == [
        "cats/c1.png",
        "cats/c2.png",
        "dogs/d0.png",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [{"resolution": 0}, {"fit": "stretch"}, {"background": (1, 2)}, {"limit": 0}],
)
def test_bad_options(tmp_path: Path, tmp_home: Path, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"resolution": 8, **kwargs}
    with pytest.raises(ConfigError):
        load_images(tmp_path, **args)  # type: ignore[arg-type]
