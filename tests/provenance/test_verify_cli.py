"""``muselab verify``: one line per file and an exit code per state."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from muselab.cli import app
from muselab.image.io import save_png
from muselab.provenance import label
from tests.provenance.conftest import edit_one_pixel, photo

runner = CliRunner()


@pytest.fixture
def files(prov_home: Path, tmp_path: Path) -> dict[str, Path]:
    img = photo("astronaut.png", 320)
    save_png(tmp_path / "signed.png", img, {"seed": 1, "model": "m"})
    save_png(tmp_path / "edited.png", img, {"seed": 1, "model": "m"})
    edit_one_pixel(tmp_path / "edited.png")
    buf = io.BytesIO()
    Image.open(tmp_path / "signed.png").convert("RGB").save(buf, format="JPEG", quality=75)
    (tmp_path / "copy.jpg").write_bytes(buf.getvalue())  # signatures and label stripped
    info = PngImagePlugin.PngInfo()
    info.add_itxt(label.XMP_KEY, label.xmp_packet("0", "other tool"))
    Image.fromarray(img[:64, :64]).save(tmp_path / "labelled.png", pnginfo=info)
    Image.fromarray(img[:64, :64]).save(tmp_path / "plain.png")
    (tmp_path / "bad.png").write_text("not an image")
    return {p.stem: p for p in tmp_path.iterdir() if p.is_file()}


@pytest.mark.parametrize(("name", "code", "state"), [
    ("signed", 0, "verified"), ("edited", 1, "tampered"), ("copy", 3, "watermarked"),
    ("labelled", 4, "labelled"), ("plain", 5, "none"), ("bad", 2, "error")])
def test_exit_code_per_state(files: dict[str, Path], name: str, code: int, state: str) -> None:
    res = runner.invoke(app, ["verify", "--json", str(files[name])])
    assert res.exit_code == code, res.output
    line = json.loads(res.stdout.splitlines()[0])
    assert line["state"] == state


def test_several_files_most_severe_wins(files: dict[str, Path]) -> None:
    res = runner.invoke(app, ["verify", str(files["signed"]), str(files["plain"])])
    assert res.exit_code == 5 and "verified" in res.stdout and "none" in res.stdout
    res = runner.invoke(app, ["verify", "--no-watermark", str(files["signed"]),
                              str(files["edited"]), str(files["bad"])])
    assert res.exit_code == 1 and "tampered" in res.stdout


def test_missing_file(tmp_path: Path) -> None:
    res = runner.invoke(app, ["verify", str(tmp_path / "nope.png")])
    assert res.exit_code == 2 and "no such file" in res.output
