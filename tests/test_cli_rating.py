"""``muselab rate``, ``rank`` and ``aesthetics`` through Typer's runner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app
from muselab.data import ImageDataset
from muselab.image.io import read_png_metadata
from muselab.store.ratings import RatingStore

runner = CliRunner()


@pytest.fixture
def batch(emoji_data: ImageDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """24 real emoji as PNG files, plus one corrupt file; a private data home."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for i, img in enumerate(emoji_data.images[:24]):
        Image.fromarray(img).save(folder / f"e{i:02d}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path / "home"))
    return folder


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    """Exit code and output with rich's line wrapping undone (CSV lines are kept whole)."""
    result = runner.invoke(app, list(args), input=input)
    if "--csv" in args:
        return result.exit_code, result.output
    return result.exit_code, " ".join(result.output.split())


def test_rate_loop_stores_ratings_and_saves_the_model(batch: Path, tmp_path: Path) -> None:
    db = tmp_path / "studio.sqlite3"
    answers = "5\nh\n1\nbogus\nl\ns\nm\n3\n2\n4\nh\n1\n5\nq\n"
    code, output = run("rate", str(batch), "--db", str(db), "--rater", "ana",
                       "--backbone", "none", "--res", "32", input=answers)
    assert code == 0, output
    assert "skipped" in output and "broken.png" in output
    assert "give 1-5 stars or high/medium/low" in output
    store = RatingStore.open(db)
    assert store.count("ana") == 11  # 12 answers, one of them a skip
    assert len({r.path for r in store.latest("ana")}) == 11
    model_dir = tmp_path / "value-models" / "ana"
    report = json.loads((model_dir / "config.json").read_text())["report"]
    assert report["n"] == 11 and report["heldout"] is not None
    assert "held-out accuracy" in output
    # A second session skips what is rated and stops at --limit.
    code, output = run("rate", str(batch), "--db", str(db), "--rater", "ana", "--backbone",
                       "none", "--res", "32", "--limit", "2", input="3\n3\n3\n")
    assert code == 0, output
    assert "11 already rated by ana" in output and store.count("ana") == 13


def test_rank_copies_the_best_with_a_contact_sheet(batch: Path, tmp_path: Path) -> None:
    db = tmp_path / "studio.sqlite3"
    store = RatingStore.open(db)
    files = sorted(batch.glob("e*.png"))
    for f in files[:12]:
        img = np.asarray(Image.open(f).convert("RGB"), float)
        colourful = float(np.std(img[..., 0] - img[..., 1]))
        store.add(f, 5 if colourful > 40 else 1, rater="ana")
    out_dir = tmp_path / "best"
    code, output = run("rank", str(batch), "--top", "5", "--out", str(out_dir), "--db", str(db),
                       "--backbone", "none", "--res", "32")
    assert code == 0, output
    kept = sorted(p.name for p in out_dir.glob("0*.png"))
    assert len(kept) == 5 and kept[0].startswith("001_e")
    rows = list(csv.DictReader((out_dir / "ranking.csv").open()))
    assert len(rows) == 24 and [int(r["rank"]) for r in rows] == list(range(1, 25))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert Path(rows[0]["path"]).name == kept[0][4:]
    meta = read_png_metadata(out_dir / "contact_sheet.png")
    assert meta["ratings"] == 12 and len(meta["order"]) == 5
    code, output = run("rank", str(batch), "--top", "3", "--out", str(tmp_path / "links"),
                       "--link", "--db", str(db), "--backbone", "none", "--res", "32")
    assert code == 0 and all(p.is_symlink() for p in (tmp_path / "links").glob("0*.png"))


def test_rank_needs_ratings_or_the_prior(batch: Path, tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite3"
    code, output = run("rank", str(batch), "--db", str(db), "--backbone", "none")
    assert code == 2 and "has no ratings" in output and "--prior" in output
    code, output = run("rank", str(batch), "--db", str(db), "--backbone", "none", "--prior",
                       "--top", "3")
    assert code == 0 and "aesthetics-only prior" in output


def test_aesthetics_table_and_csv(batch: Path, tmp_path: Path) -> None:
    code, output = run("aesthetics", str(batch), "--csv", "--out", str(tmp_path / "a.csv"))
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(output[output.index("path,"):])))
    assert len(rows) == 24 and float(rows[0]["colourfulness"]) > 0
    assert (tmp_path / "a.csv").read_text() == output[output.index("path,"):]
    code, output = run("aesthetics", str(batch / "e00.png"))
    assert code == 0 and "1 images at 32 px" in output


def test_bad_input_exits_2(batch: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["aesthetics", str(empty)], ["rate", str(empty), "--db", str(tmp_path / "d")],
                 ["rank", str(empty), "--db", str(tmp_path / "d")],
                 ["aesthetics", str(batch / "broken.png")],
                 ["aesthetics", str(tmp_path / "missing")]):
        code, output = run(*args)
        assert code == 2, (args, output)
        assert output.count("error:") == 1
    code, output = run("rank", str(batch), "--model", str(tmp_path / "nope"), "--db",
                       str(tmp_path / "d"))
    assert code == 2 and "cannot load a value model" in output


def test_the_loop_asks_about_the_most_uncertain_image(emoji_data: ImageDataset) -> None:
    from muselab.commands.rating import _pick
    from muselab.evaluate.active import entropy
    from muselab.evaluate.value import ValueConfig, ValueModel
    from muselab.store.ratings import Candidates

    thumbs = list(emoji_data.images[:12])
    cands = Candidates([Path(f"{i}.png") for i in range(12)], [str(i) for i in range(12)],
                       thumbs)
    model = ValueModel(ValueConfig(backbone="none", res=32))
    model.use_prior(thumbs, cands.shas)
    h = entropy(model.predict(thumbs, cands.shas).probs)
    rng = np.random.default_rng(0)
    first = _pick(model, cands, set(), rng, explore=0.0)
    assert first == int(np.argmax(h))
    second = _pick(model, cands, {cands.shas[first]}, rng, explore=0.0)
    assert second == int(np.argsort(-h, kind="stable")[1])
    assert _pick(model, cands, set(cands.shas), rng, explore=0.0) is None
