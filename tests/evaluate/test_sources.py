"""Image sources: folders of mixed sizes are resized; a set compared with itself is split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from muselab.evaluate.sources import (
    load_pair,
    load_source,
    native_resolution,
    resize_images,
    same_data,
    subset,
)


def write_folder(root: Path, sizes: list[tuple[int, int]], seed: int = 0) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, (w, h) in enumerate(sizes):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / f"img{i:03d}.png")
    return root


def test_folder_of_mixed_sizes_is_resized(tmp_home: Path, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "mixed", [(40, 30), (64, 64), (20, 20), (33, 50)])
    assert native_resolution(str(folder)) == 30  # the first image's short side
    got = load_source(str(folder), None, 24, seed=0)
    assert got.images.shape == (4, 24, 24, 3) and got.kind == "folder"


def test_subset_and_resize() -> None:
    x = np.arange(10 * 8 * 8 * 3, dtype=np.uint8).reshape(10, 8, 8, 3)
    s = subset(x, 4, seed=3)
    assert len(s) == 4 and np.array_equal(subset(x, 4, seed=3), s)
    assert subset(x, 40, seed=0) is x
    assert resize_images(x, 4).shape == (10, 4, 4, 3)


def test_same_set_is_split_into_disjoint_halves(tmp_home: Path, tmp_path: Path) -> None:
    assert same_data("emoji", "emoji") and not same_data("emoji", "digits")
    folder = write_folder(tmp_path / "set", [(16, 16)] * 21)
    a, b = load_pair(str(folder), str(folder) + "/", 100, seed=0)
    assert len(a) == len(b) == 10 and a.images.shape[1:] == (16, 16, 3)
    seen = {im.tobytes() for im in a.images}
    assert not any(im.tobytes() in seen for im in b.images)  # random images: all distinct
    c, _ = load_pair(str(folder), str(folder), 4, seed=0)
    assert len(c) == 4
