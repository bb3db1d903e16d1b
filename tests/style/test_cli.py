"""``muselab stylize`` / ``style`` / ``translate`` on the command line; GIF smoothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app
from muselab.image.io import read_png_metadata
from muselab.style.common import frame_change, luminance_only, match_colours, smooth_frames
from tests.style.conftest import photo

runner = CliRunner()


def _save(path: Path, img: np.ndarray) -> Path:
    Image.fromarray(img).save(path)
    return path


def test_stylize_writes_png_with_provenance(stylizer: object, tmp_path: Path) -> None:
    c = _save(tmp_path / "c.png", photo("astronaut", 64))
    s1 = _save(tmp_path / "s1.png", photo("immunohistochemistry", 64))
    s2 = _save(tmp_path / "s2.png", photo("coffee", 64))
    out = tmp_path / "out.png"
    res = runner.invoke(app, ["stylize", str(c), str(s1), str(s2), "--weights", "0.7,0.3",
                              "--alpha", "0.3", "--preserve-color", "--out", str(out)])
    assert res.exit_code == 0, res.output
    meta = read_png_metadata(out)
    assert meta["method"] == "arbitrary" and meta["weights"] == [0.7, 0.3]
    assert meta["alpha"] == 0.3 and meta["preserve_color"] == "luminance"


def test_stylize_bad_input_exits_2(stylizer: object, tmp_path: Path) -> None:
    c = _save(tmp_path / "c.png", photo("astronaut", 64))
    (tmp_path / "bad.jpg").write_text("nope")
    for args, words in [([str(c), str(tmp_path / "bad.jpg")], "bad.jpg"),
                        ([str(c), str(c), "--weights", "1,x"], "--weights"),
                        ([str(c), str(c), "--alpha", "2"], "--alpha"),
                        ([str(c)], "STYLE"),
                        ([str(c), str(c), "--method", "oil"], "--method")]:
        res = runner.invoke(app, ["stylize", *args, "--out", str(tmp_path / "o.png")])
        assert res.exit_code == 2 and words in res.output, (args, res.output)
    res = runner.invoke(app, ["translate", "train", "emoji"])
    assert res.exit_code == 2 and "second set B" in res.output


def test_animated_gif_is_smoothed(stylizer: object, tmp_path: Path) -> None:
    base = photo("chelsea", 96)
    frames = [np.roll(base, 2 * i, axis=1)[:64, :64].copy() for i in range(4)]
    Image.fromarray(frames[0]).save(tmp_path / "anim.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]])
    style = _save(tmp_path / "s.png", photo("immunohistochemistry", 64))
    res = runner.invoke(app, ["stylize", str(tmp_path / "anim.gif"), str(style), "--out",
                              str(tmp_path / "out.gif"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "unsmoothed" in res.output
    with Image.open(tmp_path / "out.gif") as im:
        assert im.n_frames == 4


def test_smoothing_lowers_flicker_and_colour_helpers() -> None:
    rng = np.random.default_rng(0)
    still = np.full((16, 16, 3), 128, np.uint8)
    flicker = [np.clip(still + rng.integers(-40, 40, still.shape), 0, 255).astype(np.uint8)
               for _ in range(6)]
    smoothed = smooth_frames(flicker, 0.7, [still] * 6)
    assert frame_change(smoothed) < 0.5 * frame_change(flicker)
    moving = [np.roll(photo("coffee", 32), 8 * i, axis=1) for i in range(3)]
    # where the content moves the frames are not held back (no trails)
    assert frame_change(smooth_frames(moving, 0.7, moving)) > 0.8 * frame_change(moving)
    assert frame_change(smooth_frames(moving, 0.7)) < 0.8 * frame_change(moving)  # blind EMA
    a, b = photo("coffee", 32) / 255.0, photo("immunohistochemistry", 32) / 255.0
    m = match_colours(a.astype(np.float32), b.astype(np.float32))
    assert np.abs(m.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).max() < 0.02
    lum = luminance_only(a.astype(np.float32), b.astype(np.float32))
    assert lum.shape == a.shape and 0 <= lum.min() and lum.max() <= 1
