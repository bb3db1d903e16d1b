"""Sampling a trained run: a seed always gives the same pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muselab.errors import MuselabError
from muselab.image.pipeline import ImagePipeline
from muselab.train.run import start_run
from tests.tiny import tiny_config


@pytest.fixture
def pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImagePipeline:
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path.parent / "muselab-home"))
    # the VAE (group norm, no running statistics) makes a structured sample after a few steps
    cfg = tiny_config("vae", steps=10, metric_every=0, sample_every=0)
    trainer = start_run(cfg, tmp_path / "runs")
    trainer.fit()
    return ImagePipeline.from_run(trainer.run_dir, device="cpu")


def test_stored_pixel_slice_of_a_seeded_sample(pipe: ImagePipeline) -> None:
    img = pipe.generate([3])[0]  # uint8 [32, 32, 3]
    assert img.shape == (32, 32, 3)
    expected = np.array(STORED_SLICE, dtype=np.uint8)
    assert img.std() > 5  # a real picture, not a flat field
    assert np.array_equal(img[14:16, 14:16], expected), img[14:16, 14:16].tolist()


def test_seed_gives_the_same_image_alone_or_in_a_batch(pipe: ImagePipeline) -> None:
    batch = pipe.generate([1, 2, 3, 4])
    assert np.array_equal(batch[2], pipe.generate([3])[0])
    assert not np.array_equal(batch[0], batch[1])


def test_interpolation_passes_through_the_seeds(pipe: ImagePipeline) -> None:
    frames = pipe.interpolate([1, 2], frames=4)
    assert frames.shape == (5, 32, 32, 3)
    assert np.abs(frames[0].astype(int) - pipe.generate([1])[0]).max() <= 1
    assert np.abs(frames[-1].astype(int) - pipe.generate([2])[0]).max() <= 1


def test_labels_need_a_conditional_model(pipe: ImagePipeline) -> None:
    with pytest.raises(MuselabError, match="not class-conditional"):
        pipe.generate([0], label="cat")


def test_missing_best_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MuselabError, match="no weights"):
        ImagePipeline.from_run(tmp_path, best=True)


STORED_SLICE = [[[148, 156, 159], [140, 149, 143]], [[156, 165, 175], [154, 162, 159]]]
