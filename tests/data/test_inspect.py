"""Inspecting folders: counts, sizes, modes, formats, bad files, the contact sheet."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from muselab.data import inspect_folder
from muselab.data.inspect import GAP, sample_evenly
from muselab.errors import DataError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """5 good images in 3 modes/formats and 2 sizes, plus 1 bad file, in 2 subfolders."""
    root = tmp_path / "pics"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.new("RGBA", (32, 32), (255, 0, 0, 128)).save(root / "cats" / "a.png")
    Image.new("RGB", (32, 32), (0, 255, 0)).save(root / "cats" / "b.png")
    Image.new("L", (40, 20), 100).save(root / "dogs" / "c.jpg")
    Image.new("L", (40, 20), 200).save(root / "dogs" / "d.jpg")
    Image.new("P", (32, 32), 3).save(root / "dogs" / "e.gif")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_report(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    report = inspect_folder(folder, out=out, resolution=16, progress=False)
    assert report.source == str(folder.resolve())
    assert (report.files, report.images) == (6, 5)
    assert report.modes == {"L": 2, "P": 1, "RGB": 1, "RGBA": 1}
    assert report.formats == {"PNG": 2, "JPEG": 2, "GIF": 1}
    assert report.sizes == {"32x32": 3, "40x20": 2}
    assert report.min_size == (40, 20) and report.max_size == (32, 32)
    assert report.classes == {"cats": 2, "dogs": 3}
    assert [b.path for b in report.bad] == ["dogs/broken.png"]
    text = report.render()
    assert "6 (5 readable, 1 bad)" in text and "dogs/broken.png" in text and str(out) in text


def test_contact_sheet(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    report = inspect_folder(folder, out=out, resolution=16, progress=False)
    assert report.contact_sheet == out and out.is_file()
    with Image.open(out) as sheet:
        # 5 thumbnails -> 3 columns x 2 rows of 16 px, GAP px apart and around
        assert sheet.format == "PNG" and sheet.mode == "RGB"
        assert sheet.size == (3 * (16 + GAP) + GAP, 2 * (16 + GAP) + GAP)
        # first thumbnail is cats/a.png: half-transparent red on white
        assert sheet.getpixel((GAP + 8, GAP + 8)) == (255, 127, 127)


def test_default_output_in_data_home(folder: Path, tmp_home: Path) -> None:
    report = inspect_folder(folder, resolution=8, progress=False)
    assert report.contact_sheet == tmp_home / "inspect" / "pics-contact.png"
    assert report.contact_sheet.is_file()


def test_digits(tmp_home: Path) -> None:
    report = inspect_folder("digits", resolution=8)
    assert report.images == 1797 and report.classes["0"] == 178
    with Image.open(report.contact_sheet) as sheet:
        assert sheet.size == (8 * (8 + GAP) + GAP,) * 2


def test_emoji_sheet(emoji_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    out = tmp_path / "emoji.png"
    report = inspect_folder("emoji", out=out, progress=False)
    assert report.images == 3786 and report.modes == {"RGBA": 3722, "LA": 62, "P": 2}
    assert report.sizes == {"64x64": 3786} and report.bad == []
    with Image.open(out) as sheet:
        assert sheet.size == (8 * (64 + GAP) + GAP,) * 2


def test_errors(tmp_path: Path, tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="no images found"):
        inspect_folder(tmp_path, progress=False)
    with pytest.raises(DataError, match="does not exist"):
        inspect_folder(tmp_path / "missing", progress=False)
    with pytest.raises(DataError, match="no data set or folder named 'xyz'"):
        inspect_folder("xyz", progress=False)


def test_sample_evenly() -> None:
    assert sample_evenly(3) == [0, 1, 2]
    picked = sample_evenly(1000)
    assert len(picked) == 64 and picked[0] == 0 and picked[-1] == 999
