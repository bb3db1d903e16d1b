"""Tiny trained diffusion runs shared by the image tests (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny import tiny_config


def _train(model: str, home: Path, runs: Path, extra: dict) -> Path:
    from muselab.train.run import start_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(home))
        trainer = start_run(tiny_config(model, steps=4, extra=extra, sample_every=0,
                                        metric_every=0), runs)
        trainer.fit()
    return trainer.run_dir


@pytest.fixture(scope="session")
def text_run(emoji_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """text-diffusion, 16 px, 4 steps on 64 captioned emoji."""
    data = {"data": {"source": "emoji", "resolution": 16, "limit": 64, "text": True}}
    return _train("text-diffusion", emoji_home, tmp_path_factory.mktemp("runs"), data)


@pytest.fixture(scope="session")
def ae_run(emoji_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """autoencoder, 16 px -> 8x8x4 latents, 4 steps."""
    extra = {"data": {"source": "emoji", "resolution": 16, "limit": 64}}
    return _train("autoencoder", emoji_home, tmp_path_factory.mktemp("runs"), extra)
