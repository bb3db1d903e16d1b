from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from muselab.image.io import make_grid, read_png_metadata, save_gif, save_png


def test_grid_layout() -> None:
    imgs = np.stack([np.full((4, 4, 3), i, np.uint8) for i in range(5)])
    grid = make_grid(imgs, ncol=3, pad=1)
    assert grid.shape == (1 + 2 * 5, 1 + 3 * 5, 3)
    assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 1 and grid[6, 1, 0] == 3
    assert grid[6, 11, 0] == 255  # the empty sixth cell keeps the fill


def test_png_round_trips_pixels_and_provenance(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    save_png(tmp_path / "a.png", img, {"seed": 7, "model": "dcgan"})
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)
    assert read_png_metadata(tmp_path / "a.png") == {"seed": 7, "model": "dcgan"}
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left


def test_gif_frames(tmp_path: Path) -> None:
    frames = [np.full((6, 6, 3), 40 * i, np.uint8) for i in range(4)]
    save_gif(tmp_path / "w.gif", frames, fps=10)
    gif = Image.open(tmp_path / "w.gif")
    assert gif.n_frames == 4 and gif.info["duration"] == 100
