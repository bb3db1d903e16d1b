"""Built-in sets: digits, the real emoji fetch, and the fetch machinery offline."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import muselab.data.builtin as builtin
from muselab.data import REGISTRY, ImageDataset, fetch_dataset, list_datasets, load_images
from muselab.errors import DataError

EMOJI_CLASSES = [
    "Activities",
    "Animals & Nature",
    "Component",
    "Flags",
    "Food & Drink",
    "Objects",
    "People & Body",
    "Smileys & Emotion",
    "Symbols",
    "Travel & Places",
]
EMOJI_MEAN_32 = 193.2442  # measured once: mean of all 3,786 emoji at 32 px on white
GRINNING_32_SLICE = [[[120, 94, 23], [120, 96, 23]], [[104, 69, 28], [61, 36, 13]]]


# --------------------------------------------------------------------------- digits


def test_digits(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load_images("digits", 16, progress=False)
    assert ds.images.shape == (1797, 16, 16, 3) and ds.images.dtype == np.uint8
    assert ds.labels is not None and ds.labels.dtype == np.int64
    assert sorted(set(ds.labels.tolist())) == list(range(10))
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.source == "digits" and len(ds.files) == 1797 and ds.bad == []
    assert ds.images[:, 0, 0].max() == 0 and ds.images.max() == 255  # white on black
    assert (ds.images[..., 0] == ds.images[..., 2]).all()

    def boom(*args: object) -> np.ndarray:
        raise AssertionError("digits upsampled again despite a cache hit")

    monkeypatch.setattr(builtin, "_digits_images", boom)
    np.testing.assert_array_equal(load_images("digits", 16, progress=False).images, ds.images)


def test_digits_limit(tmp_home: Path) -> None:
    ds = load_images("digits", 8, limit=10, progress=False)
    assert ds.images.shape == (10, 8, 8, 3)
    assert ds.labels is not None and ds.labels.tolist() == list(range(10))


def test_list_datasets(tmp_home: Path) -> None:
    infos = {i.name: i for i in list_datasets()}
    assert sorted(infos) == ["digits", "emoji", "emoji-twitter"]
    assert infos["digits"].fetched and not infos["emoji"].fetched
    assert infos["emoji"].licence == "Apache-2.0"
    assert infos["emoji-twitter"].licence == "CC-BY-4.0"
    assert infos["digits"].licence == "BSD-3-Clause"
    assert infos["emoji"].source == "npm:emoji-datasource-google@16.0.0"
    assert fetch_dataset("digits").name == "digits.csv.gz"


# --------------------------------------------------------------------------- real emoji


def test_emoji_full_set(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    ds = load_images("emoji", 32, progress=False)
    assert ds.images.shape == (3786, 32, 32, 3)
    assert ds.class_names == EMOJI_CLASSES
    assert ds.labels is not None and sorted(set(ds.labels.tolist())) == list(range(10))
    assert ds.captions is not None and len(ds.captions) == 3786 and all(ds.captions)
    assert ds.bad == [] and ds.source == "emoji"
    assert ds.images.mean() == pytest.approx(EMOJI_MEAN_32, abs=0.01)
    grinning = ds.files.index("1f600.png")
    assert ds.images[grinning, 10:12, 10:12].tolist() == GRINNING_32_SLICE
    assert ds.class_names[int(ds.labels[grinning])] == "Smileys & Emotion"
    santa = ds.files.index("1f385.png")
    assert ds.captions[santa] == "father christmas, santa, person fantasy"
    toned = ds.captions[ds.files.index("1f385-1f3fd.png")]
    assert toned == "father christmas, santa, person fantasy, medium skin tone"
    manifest = json.loads((emoji_home / "datasets/emoji-google-16.0.0/manifest.json").read_text())
    assert manifest["tarball_sha256"] == REGISTRY["emoji"].sha256
    assert manifest["images"] == 3786 and manifest["unlisted"] == []


def test_emoji_fixture_subset(emoji_data: ImageDataset) -> None:
    assert emoji_data.images.shape == (256, 32, 32, 3)
    assert emoji_data.files == sorted(emoji_data.files)
    assert emoji_data.labels is not None and len(emoji_data.labels) == 256
    assert emoji_data.captions is not None and emoji_data.captions[0] == "hash key, hash, keycap"


# --------------------------------------------------------------------------- fetch, offline


def fake_package(path: Path) -> Path:
    """A tiny emoji-datasource-like tarball: 3 images, metadata and junk to skip."""
    entries = [
        {
            "name": "GRINNING FACE",
            "short_names": ["grinning"],
            "category": "Smileys & Emotion",
            "subcategory": "face-smiling",
            "image": "1f600.png",
            "has_img_google": True,
        },
        {
            "name": "WAVING HAND SIGN",
            "short_names": ["wave", "hand_wave"],
            "category": "People & Body",
            "subcategory": "hand-fingers-open",
            "image": "1f44b.png",
            "has_img_google": True,
            "skin_variations": {"1F3FF": {"image": "1f44b-1f3ff.png", "has_img_google": True}},
        },
    ]
    members: dict[str, bytes] = {
        "package/emoji.json": json.dumps(entries).encode(),
        "package/LICENSE": b"MIT",
        "package/README.md": b"skip me",
        "package/img/google/64/sub/deep.png": b"skip me",
        "package/img/google/32/1f600.png": b"skip me",
    }
    for i, name in enumerate(["1f600.png", "1f44b.png", "1f44b-1f3ff.png"]):
        buf = io.BytesIO()
        Image.new("RGBA", (64, 64), (50 * i, 100, 200, 255)).save(buf, format="PNG")
        members[f"package/img/google/64/{name}"] = buf.getvalue()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_emoji(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """Register ``emoji-fake``: the emoji recipe pinned to a tiny local tarball."""
    tgz = fake_package(tmp_path / "emoji-fake.tgz")
    sha = hashlib.sha256(tgz.read_bytes()).hexdigest()
    info = replace(REGISTRY["emoji"], name="emoji-fake", sha256=sha, images=3, dirname="fake-1")
    monkeypatch.setitem(REGISTRY, "emoji-fake", info)
    return "emoji-fake", tgz


def test_fetch_from_tarball_and_load(
    tmp_home: Path, tmp_path: Path, fake_emoji: tuple[str, Path]
) -> None:
    name, tgz = fake_emoji
    root = fetch_dataset(name, tarball=tgz, progress=False)
    assert root == tmp_home / "datasets" / "fake-1"
    assert sorted(p.name for p in root.iterdir()) == [
        "LICENSE",
        "emoji.json",
        "img",
        "manifest.json",
    ]
    assert sorted(p.name for p in (root / "img").iterdir()) == [
        "1f44b-1f3ff.png",
        "1f44b.png",
        "1f600.png",
    ]
    assert tgz.exists()  # a tarball the user passed is left alone
    assert not [p for p in (tmp_home / "datasets").iterdir() if p.name.startswith(".")]
    ds = load_images(name, 8, progress=False)
    assert ds.files == ["1f44b-1f3ff.png", "1f44b.png", "1f600.png"]
    assert ds.class_names == ["People & Body", "Smileys & Emotion"]
    assert ds.labels is not None and ds.labels.tolist() == [0, 0, 1]
    assert ds.captions == [
        "waving hand sign, wave, hand wave, hand fingers open, dark skin tone",
        "waving hand sign, wave, hand wave, hand fingers open",
        "grinning face, grinning, face smiling",
    ]
    assert ds.images[2, 0, 0].tolist() == [0, 100, 200]  # 1f600.png was made first
    (tmp_path / "other.tgz").write_bytes(b"not the pinned tarball")
    with pytest.raises(DataError, match="sha256"):  # checked even when already fetched
        fetch_dataset(name, tarball=tmp_path / "other.tgz", progress=False)


def test_fetch_with_npm(
    tmp_home: Path, tmp_path: Path, fake_emoji: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, tgz = fake_emoji
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/npm-args"\ncp "{tgz}" ./fake-1.tgz\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = fetch_dataset(name, progress=False)
    assert (root / "manifest.json").exists() and len(list((root / "img").iterdir())) == 3
    args = (tmp_path / "npm-args").read_text()
    assert args.startswith("pack emoji-datasource-google@16.0.0")
    assert not [p for p in (tmp_home / "datasets").iterdir() if p.name.startswith(".")]
    assert load_images(name, 8, progress=False).images.shape == (3, 8, 8, 3)


def test_wrong_sha256(tmp_home: Path, tmp_path: Path) -> None:
    fake = fake_package(tmp_path / "not-the-real-one.tgz")
    with pytest.raises(DataError, match="sha256") as info:
        fetch_dataset("emoji", tarball=fake, progress=False)
    message = str(info.value)
    assert str(fake) in message and REGISTRY["emoji"].sha256 in message  # type: ignore[operator]
    assert hashlib.sha256(fake.read_bytes()).hexdigest() in message
    assert not (tmp_home / "datasets" / "emoji-google-16.0.0").exists()


def test_npm_missing(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(DataError, match="npm") as info:
        fetch_dataset("emoji", progress=False)
    assert "--tarball" in str(info.value)


def test_missing_tarball_named(tmp_home: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        fetch_dataset("emoji", tarball=tmp_path / "nope.tgz", progress=False)
    assert "nope.tgz" in str(info.value)


def test_unknown_builtin(tmp_home: Path) -> None:
    with pytest.raises(DataError, match="built-in sets: digits, emoji, emoji-twitter"):
        fetch_dataset("xyz")
