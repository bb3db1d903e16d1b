"""In-house text alignment on a tiny text model, with pixel features (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from muselab.errors import ConfigError
from muselab.evaluate.text_alignment import evaluate_alignment
from muselab.models.zoo import load_pipeline


def test_report_has_prompted_baseline_and_ceiling(text_run: Path, emoji_home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    pipe = load_pipeline(text_run, device="cpu")
    report = evaluate_alignment(pipe, n=4, steps=2, features="pixels", progress=False)
    assert report.n == 4 and sum(c for _, c in report.per_category.values()) == 4
    for value in (report.accuracy, report.unconditional, report.real):
        assert 0.0 <= value <= 1.0
    assert report.real > 0.25  # pixels separate the categories better than chance (0.1)
    assert report.swd > 0
    assert report.images is not None and report.images.shape == (4, 16, 16, 3)
    assert len(report.captions) == 4 and "images" not in report.to_dict()
    with pytest.raises(ConfigError, match="--n 101"):
        evaluate_alignment(pipe, n=101, features="pixels")


def test_needs_a_text_model(emoji_home: Path) -> None:
    pipe = load_pipeline("emoji-vae32", device="cpu")
    with pytest.raises(ConfigError, match="text-to-image"):
        evaluate_alignment(pipe, n=4, features="pixels")


def test_captioned_grid_places_each_image_and_caption() -> None:
    import numpy as np

    from muselab.image.sheet import captioned_grid

    imgs = np.zeros((5, 8, 8, 3), np.uint8)
    imgs[3] = 200
    sheet = captioned_grid(imgs, [f"emoji {i}" for i in range(5)], columns=2, scale=2)
    cell_w, cell_h = 16 + 8, 16 + 14 + 6
    assert sheet.shape == (3 * cell_h + 4, 2 * cell_w + 4, 3)
    y, x = 4 + 1 * cell_h, 4 + 1 * cell_w  # image 3: row 1, column 1
    assert (sheet[y : y + 16, x : x + 16] == 200).all()
    assert (sheet[y + 17 : y + 30, x : x + 16] < 128).any()  # its caption's ink
    with pytest.raises(ValueError, match="captions"):
        captioned_grid(imgs, ["one"])


def test_latent_models_get_a_decoder_domain_classifier(vae_run: Path, emoji_home: Path,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from muselab.train.run import start_run
    from tests.tiny import tiny_config

    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    extra = {"data": {"source": "emoji", "resolution": 32, "limit": 64, "text": True},
             "model_config": {"autoencoder": str(vae_run), "mlp": {"width": 32, "depth": 1}}}
    trainer = start_run(tiny_config("latent-diffusion", steps=2, extra=extra), tmp_path)
    trainer.fit()
    report = evaluate_alignment(load_pipeline(trainer.run_dir, device="cpu"), n=4, steps=2,
                                features="pixels", progress=False)
    assert set(report.decoded) == {"accuracy", "unconditional", "real"}
    assert all(0.0 <= v <= 1.0 for v in report.decoded.values())
