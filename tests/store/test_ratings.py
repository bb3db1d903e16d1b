"""The ratings store: identity by content, history, thumbnails, candidates, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muselab.errors import ConfigError, DataError
from muselab.store.ratings import (
    THUMB_RES,
    RatingStore,
    file_sha256,
    load_candidates,
    parse_rating,
)


def write_png(path: Path, seed: int, size: int = 40, shape: tuple[int, int] | None = None) -> Path:
    h, w = shape or (size, size)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> RatingStore:
    return RatingStore.open(tmp_path / "db" / "studio.sqlite3")


def test_parse_rating_maps_stars_and_classes() -> None:
    assert [parse_rating(s) for s in (1, 2, "3", 4, " 5 ")] == [
        (1, "low"), (2, "low"), (3, "medium"), (4, "high"), (5, "high")]
    assert parse_rating("H") == (None, "high")
    assert parse_rating("m") == (None, "medium")
    assert parse_rating("low") == (None, "low")
    for bad in (0, 6, "x", "", "10"):
        with pytest.raises(ConfigError, match="rating"):
            parse_rating(bad)


def test_add_keeps_history_and_latest_wins(store: RatingStore, tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png", 0)
    b = write_png(tmp_path / "b.png", 1)
    first = store.add(a, 2, rater="ana", when=1.0)
    store.add(a, "h", rater="ana", when=2.0)
    store.add(b, 3, rater="ana", when=3.0)
    store.add(b, 5, rater="bo", when=4.0)
    assert first.sha256 == file_sha256(a) and first.label == "low" and first.level == 2.0
    latest = {r.sha256: r for r in store.latest("ana")}
    assert latest[file_sha256(a)].label == "high" and latest[file_sha256(a)].stars is None
    assert latest[file_sha256(a)].level == 4.5 and latest[file_sha256(a)].klass == 2
    assert latest[file_sha256(b)].stars == 3
    assert [r.stars for r in store.history(file_sha256(a))] == [2, None]
    assert len(store.history()) == 4
    assert store.count("ana") == 2 and store.count("bo") == 1 and store.count() == 2
    assert {r.rater for r in store.latest()} == {"ana", "bo"}  # newest per image, any rater
    assert store.rated("bo") == {file_sha256(b)}


def test_identity_is_the_content_and_survives_moves(store: RatingStore, tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png", 0, shape=(30, 50))
    store.add(a, 4)
    moved = tmp_path / "sub" / "renamed.png"
    moved.parent.mkdir()
    a.rename(moved)
    store.add(moved, 1)
    assert store.count() == 1
    assert store.latest()[0].path == str(moved.absolute())
    thumbs, ratings = store.training_set()
    assert thumbs[0].shape == (30, 30, 3) and thumbs[0].dtype == np.uint8  # never upscaled
    moved.unlink()  # the thumbnail still trains the model
    thumbs, _ = store.training_set()
    assert thumbs[0].shape == (30, 30, 3) and ratings[0].label == "low"


def test_thumbnails_are_capped_and_persist_in_wal(tmp_path: Path) -> None:
    db = tmp_path / "studio.sqlite3"
    big = write_png(tmp_path / "big.png", 2, shape=(300, 200))
    RatingStore.open(db).add(big, "m", rater="ana")
    again = RatingStore.open(db)
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    thumbs, ratings = again.training_set("ana")
    assert thumbs[0].shape == (THUMB_RES, THUMB_RES, 3)
    assert ratings[0].label == "medium" and ratings[0].rater == "ana"


def test_bad_input_is_clear(store: RatingStore, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no ratings"):
        store.training_set()
    with pytest.raises(DataError, match="does not exist|cannot read"):
        store.add(tmp_path / "missing.png", 3)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(DataError, match="junk.png"):
        store.add(junk, 3)
    with pytest.raises(ConfigError, match="stars must be 1 to 5"):
        store.add(write_png(tmp_path / "ok.png", 0), 7)
    with pytest.raises(ConfigError, match="rater"):
        store.add(tmp_path / "ok.png", 3, rater=" ")
    assert store.count() == 0


def test_load_candidates_skips_unreadable_and_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        write_png(folder / f"{i}.png", i)
    (folder / "copy.png").write_bytes((folder / "0.png").read_bytes())
    (folder / "bad.png").write_bytes(b"broken")
    cands = load_candidates(folder)
    assert [p.name for p in cands.paths] == ["0.png", "1.png", "2.png"]
    assert len(set(cands.shas)) == 3 and cands.thumbs[0].shape == (40, 40, 3)
    assert [p.name for p, _ in cands.skipped] == ["bad.png"]
    assert len(load_candidates(folder / "1.png")) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images found in folder"):
        load_candidates(empty)
    with pytest.raises(DataError, match="does not exist"):
        load_candidates(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no readable image"):
        load_candidates(folder / "bad.png")


def test_shares_the_studio_database_with_the_gallery(tmp_path: Path) -> None:
    from muselab.store import gallery
    from muselab.store.db import connect

    conn = connect(tmp_path / "studio.sqlite3")
    gallery.init(conn)
    store = RatingStore(conn)
    RatingStore(conn)  # opening again migrates nothing
    store.add(write_png(tmp_path / "a.png", 0), 4)
    versions = dict(conn.execute("SELECT component, version FROM schema_version").fetchall())
    assert versions["ratings"] == 1 and len(versions) >= 2  # the gallery has its own
    assert store.count() == 1
