"""Image -> music: the image changes the conditioning; the model composes under it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app
from muselab.crossmodal.image2music import (
    MusicConditions,
    compose_from_conditions,
    conditions_from_image,
    conditions_from_text,
    read_image,
)
from muselab.errors import DataError
from muselab.music.midi import read_midi

MODEL = str(Path(__file__).resolve().parents[2] / "models" / "bach-chorale")


def _solid(rgb: tuple[int, int, int], size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


def test_bright_yellow_and_dark_blue_get_opposite_conditions() -> None:
    bright = conditions_from_image(_solid((250, 230, 40)))
    dark = conditions_from_image(_solid((15, 25, 90)))
    assert bright.key.endswith("major") and dark.key.endswith("minor")  # Palmer 2013
    assert bright.tempo > dark.tempo
    assert bright.register > dark.register
    assert "Palmer" in bright.why["mode"] and "Palmer" in dark.why["tempo"]
    assert set(bright.why) >= {"mode", "tempo", "register", "density", "tonic", "meter"}


def test_busy_image_asks_for_more_notes_than_a_flat_one() -> None:
    flat = _solid((200, 60, 60))
    busy = flat.copy()
    busy[::2, ::2] = 20
    assert conditions_from_image(busy).density > conditions_from_image(flat).density


@pytest.mark.parametrize("img", [np.zeros((32, 32, 3), np.uint8),
                                 np.array([[[0, 0, 0]]], np.uint8)])
def test_black_or_one_pixel_image_has_a_documented_fallback(img: np.ndarray) -> None:
    c = conditions_from_image(img)
    assert c.key == "Eb minor"  # no colour: Scriabin's grey "steel" key, dark -> minor
    assert c.tempo == 67.0 and "no colour" in c.why["tonic"]  # p = (-1 - 1 + 0) / 3


def test_compose_follows_the_conditions_and_is_reproducible(tmp_path: Path) -> None:
    cond = conditions_from_image(_solid((250, 230, 40)))
    a = compose_from_conditions(cond, bars=2, seed=3, out=tmp_path / "a", model=MODEL,
                                candidates=2, wav=False)
    b = compose_from_conditions(cond, bars=2, seed=3, out=tmp_path / "b", model=MODEL,
                                candidates=2, wav=False)
    assert a["meta"]["achieved"] == b["meta"]["achieved"]
    assert Path(a["files"]["midi"]).read_bytes() == Path(b["files"]["midi"]).read_bytes()
    piece = read_midi(Path(a["files"]["midi"]))
    assert piece.notes and round(piece.tempo) == round(cond.tempo)
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["conditions"]["key"] == cond.key == meta["achieved"]["key"]
    costs = meta["candidate_costs"]
    assert len(costs) == 2 and costs[meta["chosen"]] == min(costs)


def test_cli_image2music_and_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "sun.png"
    Image.fromarray(_solid((250, 200, 30), 64)).save(path)
    runner = CliRunner()
    res = runner.invoke(app, ["image2music", str(path), "--out", str(tmp_path / "p"),
                              "--bars", "2", "--candidates", "1", "--no-wav", "--model", MODEL])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.mid").is_file() and (tmp_path / "p.png").is_file()
    assert json.loads((tmp_path / "p.json").read_text())["conditions"]["source"]["file"] == \
        str(path)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    res = runner.invoke(app, ["image2music", str(tmp_path / "bad.png"), "--no-wav"])
    assert res.exit_code == 2 and "bad.png" in res.output
    with pytest.raises(DataError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_text_route_uses_the_embedding(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))  # the MiniLM cache
    happy = conditions_from_text("a happy sunny morning with children dancing")
    sad = conditions_from_text("a sad lonely funeral in the dark night")
    assert isinstance(happy, MusicConditions)
    assert happy.key.endswith("major") and sad.key.endswith("minor")
    assert happy.tempo > sad.tempo
    assert "language" in conditions_from_text("秋夜雨").why
