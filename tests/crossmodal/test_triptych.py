"""Theme -> triptych: poem, image and music from one theme, one manifest, one zip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app
from muselab.crossmodal.triptych import make_triptych, theme_vector, zh_title
from muselab.errors import ConfigError
from muselab.io import sha256_file


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bundle_has_three_parts_and_one_manifest(lang: str, text_run: Path,
                                                 tmp_path: Path) -> None:
    res = make_triptych("autumn rain at night", tmp_path / "t", lang=lang, seed=3,
                        image_model=str(text_run), bars=2, candidates=1, device="cpu")
    m = res.manifest
    assert [p["part"] for p in m["parts"]] == ["poem", "image", "music"]
    assert m["theme"] == "autumn rain at night" and m["lang"] == lang and m["seed"] == 3
    for part in m["parts"]:
        assert part["seed"] == 3 and part["model"]
        assert sha256_file(res.folder / part["file"]) == part["sha256"]
    assert json.loads((res.folder / "manifest.json").read_text("utf-8")) == m
    with zipfile.ZipFile(res.zip) as z:
        names = {Path(n).name for n in z.namelist()}
    assert {"poem.txt", "image.png", "music.mid", "index.html", "manifest.json"} <= names
    assert [n for n in names if n.endswith(".json")].count("manifest.json") == 1
    poem = (res.folder / "poem.txt").read_text("utf-8").strip()
    assert poem
    if lang == "zh":
        assert poem.startswith("《") and any("\u4e00" <= c <= "\u9fff" for c in poem)
    page = (res.folder / "index.html").read_text("utf-8")
    assert "image.png" in page and "music.mid" in page and "autumn rain at night" in page
    # The music was conditioned by the theme: its key is the one the conditions asked for.
    music = m["parts"][2]["details"]
    assert music["conditions"]["source"]["theme"] == "autumn rain at night"


def test_same_seed_same_bundle(text_run: Path, tmp_path: Path) -> None:
    a = make_triptych("sunny beach", tmp_path / "a", lang="en", seed=1, image_model=str(text_run),
                      bars=1, candidates=1, device="cpu")
    b = make_triptych("sunny beach", tmp_path / "b", lang="en", seed=1, image_model=str(text_run),
                      bars=1, candidates=1, device="cpu")
    # PNG chunks may carry per-file ids (content credentials): compare what the seed decides.
    for name in ("poem.txt", "music.mid"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()
    pixels = [np.asarray(Image.open(r.folder / "image.png")) for r in (a, b)]
    assert np.array_equal(*pixels)
    assert a.manifest["parts"][2]["details"]["conditions"] == \
        b.manifest["parts"][2]["details"]["conditions"]


def test_zh_title_follows_the_theme_embedding() -> None:
    title, picked = zh_title("autumn rain at night", theme_vector("autumn rain at night"))
    assert set("秋雨夜") <= set(title), (title, picked)
    assert zh_title("静夜思", theme_vector("静夜思"))[0] == "静夜思"  # Chinese: used as given


def test_unsupported_language_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--lang 'fr'"):
        make_triptych("autumn rain", tmp_path / "t", lang="fr")
    res = CliRunner().invoke(app, ["triptych", "autumn rain", "--lang", "fr",
                                   "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "not supported" in res.output
    assert not (tmp_path / "t").exists()
    with pytest.raises(ConfigError, match="no model 'no-such-model'"):
        make_triptych("autumn rain", tmp_path / "u", image_model="no-such-model")
    assert not (tmp_path / "u").exists()  # checked before the poem is written
