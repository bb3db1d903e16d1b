"""The shared space: shapes and norms, the contrastive loss going down, exact resume,
retrieval maths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from muselab.crossmodal.encoders import ImageEncoder, ImageEncoderConfig, info_nce
from muselab.crossmodal.space import (
    chance_at_k,
    embed_images,
    embed_music,
    embed_text,
    load_encoder,
    recall_at_k,
    retrieval,
)
from muselab.crossmodal.train import ContrastiveConfig, ContrastiveTask, train_space
from muselab.errors import MuselabError
from muselab.music.tokens import Key, Note, Piece
from muselab.train.task import Batch


@pytest.fixture
def home(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))  # emoji + the MiniLM caption cache
    return emoji_home


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory, emoji_home: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(emoji_home))
        return train_space("image", steps=2, batch_size=16, limit=64, progress=False,
                           runs=tmp_path_factory.mktemp("runs"), checkpoint_every=1,
                           encoder={"width": 8})


def _unit_rows(x: np.ndarray) -> None:
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_text_embeddings_are_384_d_unit_norm(home: Path, emoji_data) -> None:  # type: ignore[no-untyped-def]
    t = embed_text(emoji_data.captions[:5])
    assert t.shape == (5, 384)
    _unit_rows(t)


def test_image_embeddings_shape_norm_and_any_size(home: Path, image_run: Path) -> None:
    imgs = [np.zeros((1, 1, 3), np.uint8), np.full((40, 24, 3), 200, np.uint8),
            np.zeros((32, 32, 3), np.uint8)]
    x = embed_images(imgs, image_run)
    assert x.shape == (3, 384)
    _unit_rows(x)
    np.testing.assert_array_equal(x, embed_images(imgs, image_run))  # deterministic


def test_contrastive_loss_goes_down_on_a_tiny_set(home: Path, emoji_data) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    caps = emoji_data.captions[:32]
    texts = sorted(set(caps))
    ids = torch.tensor([texts.index(c) for c in caps])
    images = torch.from_numpy(emoji_data.images[:32]).permute(0, 3, 1, 2).float() / 127.5 - 1
    task = ContrastiveTask(ImageEncoder(ImageEncoderConfig(width=8)), embed_text(texts),
                           ContrastiveConfig(lr=3e-3, warmup=1), steps=40)
    batch, g = Batch(images, ids), torch.Generator().manual_seed(0)
    losses = [float(task.train_step(batch, s, g)["loss"]) for s in range(40)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_info_nce_with_repeated_texts_reaches_its_bound() -> None:
    t = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]]), dim=1)
    ids = torch.tensor([0, 0, 1])  # rows 0 and 1 carry the same text
    bound = 2 * np.log(2) / 3  # mean entropy of the targets (1/2, 1/2), (1/2, 1/2), (1)
    aligned = info_nce(t.clone(), t, ids, torch.tensor(100.0))
    swapped = info_nce(t.flip(0), t, ids, torch.tensor(100.0))
    assert float(aligned) == pytest.approx(bound, abs=1e-4)
    assert float(swapped) > bound + 10


def test_resume_is_exact(home: Path, tmp_path: Path) -> None:
    kw = {"batch_size": 16, "limit": 64, "progress": False, "encoder": {"width": 8},
          "checkpoint_every": 2}
    full = train_space("image", steps=4, runs=tmp_path / "a", **kw)  # type: ignore[arg-type]
    half = train_space("image", steps=2, runs=tmp_path / "b", **kw)  # type: ignore[arg-type]
    train_space("image", steps=4, resume=half, **kw)  # type: ignore[arg-type]
    a, _ = load_encoder("image", full)
    b, _ = load_encoder("image", half)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_music_encoder_embeds_pieces(home: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from muselab.train.lm import load_corpus_file
    from tests.music.fixtures import fixture_corpus

    # three real pieces instead of the 8,514-tune corpus a cold data home would parse first
    corpus = load_corpus_file(fixture_corpus(tmp_path / "fixture.tokens.npz"))
    monkeypatch.setattr("muselab.music.corpus.load_music_corpus",
                        lambda name, progress=True: corpus)
    run = train_space("music", steps=1, batch_size=8, limit=16, progress=False,
                      runs=tmp_path, checkpoint_every=1, encoder={"width": 16})
    _, cfg = load_encoder("music", run)
    assert set(cfg["thresholds"]) >= {"bach.density", "folk.register"}
    piece = Piece([Note(i * 4, 4, 60 + i, 0) for i in range(8)], Key(7), (3, 4))
    x = embed_music([piece, piece], run)
    assert x.shape == (2, 384)
    _unit_rows(x)
    with pytest.raises(MuselabError, match="no notes"):
        embed_music([Piece([])], run)


def test_missing_or_wrong_encoder_is_a_clear_error(tmp_path: Path, image_run: Path) -> None:
    with pytest.raises(MuselabError, match="no image encoder"):
        load_encoder("image", "no-such-encoder")
    with pytest.raises(MuselabError, match="not a music encoder"):
        load_encoder("music", image_run)


def test_recall_and_chance_on_a_known_matrix() -> None:
    sim = np.array([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8], [0.3, 0.2, 0.1]])
    rel = np.eye(3, dtype=bool)
    assert recall_at_k(sim, rel, 1) == pytest.approx(1 / 3)  # only row 0 right at 1
    assert recall_at_k(sim, rel, 2) == pytest.approx(1 / 3)  # rows 1, 2: right one is last
    assert recall_at_k(sim, rel, 3) == 1.0
    assert chance_at_k(rel, 1) == pytest.approx(1 / 3)
    assert chance_at_k(np.array([[True, True, False, False]]), 2) == pytest.approx(5 / 6)


def test_retrieval_reports_both_directions(home: Path, emoji_data) -> None:  # type: ignore[no-untyped-def]
    caps = list(dict.fromkeys(emoji_data.captions))[:20]
    r = retrieval(embed_text(caps), caps)  # text as its own item: perfect retrieval
    assert r["item->text R@1"] == 1.0 and r["text->item R@1"] == 1.0
    assert r["item->text chance@5"] == pytest.approx(5 / 20)


def test_shipped_fp16_encoder_embeds_like_the_run(home: Path, image_run: Path,
                                                  tmp_path: Path) -> None:
    from muselab.crossmodal.train import ship_encoder
    from muselab.models.zoo import find_pretrained

    folder = ship_encoder(image_run, tmp_path / "crossmodal-image-test", description="test")
    imgs = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    a, b = embed_images(imgs, image_run), embed_images(imgs, folder)
    np.testing.assert_allclose(a, b, atol=5e-3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_MODELS", str(tmp_path))
        assert find_pretrained("crossmodal-image-test").recipe == "crossmodal-image"


def test_cli_eval_retrieval_prints_recall_and_chance(home: Path, image_run: Path,
                                                     tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from muselab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["eval", "retrieval", "image", "--image-model", str(image_run),
                              "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())["image"]
    assert {"emoji", "emoji-twitter"} <= set(report)  # + openmoji when its pairs are built
    assert report["emoji"]["items"] == report["emoji"]["texts"] == 250
    assert report["emoji"]["item->text chance@5"] == pytest.approx(5 / 250)
    assert "chance" in res.output
    res = runner.invoke(app, ["eval", "retrieval", "sound"])
    assert res.exit_code == 2 and "image, music, all" in res.output


def test_image_meaning_joins_the_colour_scores(home: Path, image_run: Path) -> None:
    from muselab.crossmodal.image2music import conditions_from_image

    img = np.full((32, 32, 3), (250, 220, 40), np.uint8)
    plain = conditions_from_image(img)
    meant = conditions_from_image(img, encoder=image_run)
    v = meant.source["scores"]["embedding_valence"]
    assert -1.0 <= v <= 1.0 and "embedding_valence" not in plain.source["scores"]
    assert meant.source["scores"]["p"] == pytest.approx((3 * plain.source["scores"]["p"] + v) / 4)
    assert "shared space" in meant.why["mode"]
