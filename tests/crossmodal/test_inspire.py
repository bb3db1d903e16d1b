"""Inspire: palette, composition, style neighbours, variations, surprises, the mood board."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app
from muselab.crossmodal.inspire import InspireConfig, composition, inspire, palette
from muselab.errors import DataError
from muselab.image.io import read_png_metadata

if TYPE_CHECKING:
    from muselab.data import ImageDataset


def test_palette_finds_the_colours_and_their_shares() -> None:
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :10] = (255, 0, 0)  # a quarter red
    img[:, 10:] = (0, 0, 255)  # three quarters blue
    pal = palette(img, k=5)
    assert len(pal) == 2  # only two colours exist
    assert pal[0].share == pytest.approx(0.75, abs=0.01) and pal[1].share == pytest.approx(0.25,
                                                                                         abs=0.01)
    assert np.allclose(pal[0].rgb, (0, 0, 255), atol=2) and np.allclose(pal[1].rgb, (255, 0, 0),
                                                                        atol=2)
    assert pal[0].hex == "#0000ff"


def test_composition_measures() -> None:
    def dot(cy: float, cx: float) -> np.ndarray:
        img = np.full((90, 90, 3), 255, np.uint8)
        y, x = int(cy * 90), int(cx * 90)
        img[y - 4 : y + 4, x - 4 : x + 4] = 0
        return img

    on_thirds, centred = composition(dot(1 / 3, 1 / 3)), composition(dot(0.5, 0.5))
    assert on_thirds["thirds"] > 3 * max(centred["thirds"], 0.1)
    assert centred["balance"] < 0.05 < on_thirds["balance"]
    assert centred["symmetry_lr"] == pytest.approx(1.0) and on_thirds["symmetry_lr"] < 1.0
    for bad in (np.zeros((30, 30, 3), np.uint8), np.full((1, 1, 3), 7, np.uint8)):
        c = composition(bad)  # documented fallback, no crash
        assert c == {"thirds": 0.0, "symmetry_lr": 1.0, "symmetry_tb": 1.0,
                     "edge_density": 0.0, "balance": 0.0}
        assert len(palette(bad, 5)) == 1


def test_inspire_end_to_end(emoji_data: ImageDataset, tmp_path: Path) -> None:
    works = tmp_path / "works"
    works.mkdir()
    picks = (10, 50, 120)
    for i in picks:
        Image.fromarray(emoji_data.images[i]).save(works / f"e{i:03d}.png")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(works / "z-black.png")
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(works / "z-pixel.png")
    cfg = InspireConfig(variations=2, spread=0.3, surprise=2, candidates=8,
                        training_limit=256, remix=True, thumb=32)
    res = inspire(works, tmp_path / "out", cfg, device="cpu", progress=False)
    reports = res.report["works"]
    assert [w["file"] for w in reports] == ["e010.png", "e050.png", "e120.png", "z-black.png",
                                            "z-pixel.png"]
    for i, w in zip(picks, reports, strict=False):  # a training image finds itself
        assert w["neighbours"][0]["index"] == i and w["neighbours"][0]["similarity"] > 0.99
    assert len(res.files["variations"]) == 5 * 2
    # Variations stay near their own work (the VAE encoding matters).
    var = np.stack([np.asarray(Image.open(f), np.float32) for f in res.files["variations"]])
    own = [np.abs(var[2 * k : 2 * k + 2] - emoji_data.images[i]).mean() for k, i in
           enumerate(picks)]
    other = [np.abs(var[2 * k : 2 * k + 2] - emoji_data.images[picks[(k + 1) % 3]]).mean()
             for k in range(3)]
    assert np.mean(own) < np.mean(other)
    values = [s["value"] for s in res.report["surprise"]]
    assert len(values) == 2 and values == sorted(values, reverse=True)
    if not res.report["remix_note"]:
        assert len(res.files["remix"]) == 5
    meta = read_png_metadata(res.board)
    assert meta["kind"] == "inspire" and meta["config"]["seed"] == 0
    with Image.open(res.board) as board:
        assert board.width >= 5 * 32 and board.height >= 6 * 32
    assert (tmp_path / "out" / "inspire.json").is_file()


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        inspire(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        inspire(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    res = CliRunner().invoke(app, ["inspire", str(tmp_path / "broken"), "--out",
                                   str(tmp_path / "out")])
    assert res.exit_code == 2 and "a.png is not a readable image" in res.output
