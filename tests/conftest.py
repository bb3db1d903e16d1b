"""Shared pytest fixtures.

``tmp_home`` gives a test its own empty data home. ``emoji_home`` is a data home shared
by the whole session *and across runs* (``$MUSELAB_TEST_HOME``, else the user's data home,
where ``make data`` already fetched it) in which the built-in ``emoji`` set is fetched
once per machine; ``emoji_data`` loads 256 emoji at 32 px from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from muselab.data import ImageDataset


def pytest_configure(config: pytest.Config) -> None:
    """Tiny test models are dominated by threading overhead: one torch thread is faster,
    and keeps seeded results identical however busy the machine is."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$MUSELAB_HOME`` at a fresh temporary folder for this test."""
    home = tmp_path / "muselab-home"
    home.mkdir()
    monkeypatch.setenv("MUSELAB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def emoji_home() -> Path:
    """A shared data home with the ``emoji`` set fetched (once per machine)."""
    from muselab.data import fetch_dataset

    default = os.environ.get("MUSELAB_HOME") or str(Path.home() / ".cache" / "muselab")
    home = Path(os.environ.get("MUSELAB_TEST_HOME") or default).expanduser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(home))
        fetch_dataset("emoji", progress=False)
    return home


@pytest.fixture
def emoji_data(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> ImageDataset:
    """The first 256 emoji at 32 px, with ``$MUSELAB_HOME`` set to ``emoji_home``."""
    from muselab.data import load_images

    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    return load_images("emoji", 32, limit=256, progress=False)


def _train(model: str, home: Path, runs: Path, extra: dict) -> Path:
    from muselab.train.run import start_run
    from tests.tiny import tiny_config

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


@pytest.fixture(scope="session")
def vae_run(emoji_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vae, 32 px -> 16-d latents, 4 steps on 64 emoji."""
    extra = {"data": {"source": "emoji", "resolution": 32, "limit": 64}}
    return _train("vae", emoji_home, tmp_path_factory.mktemp("runs"), extra)
