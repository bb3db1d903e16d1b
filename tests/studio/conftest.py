"""Studio fixtures: a tiny trained GAN run (a few steps on the offline digits set), settings
pointing every studio path into a temporary folder, and a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tiny import TINY_NETS, tiny_config

#: Training parameters of a tiny studio training job (seconds on one CPU thread).
TINY_TRAIN: dict[str, Any] = {
    "model": "hinge-gan", "data": "digits", "resolution": 32, "batch_size": 16, "limit": 64,
    "recipe": {"net": TINY_NETS["gan"]},
    "train": {"metric_every": 0, "sample_every": 2, "sample_n": 4, "checkpoint_every": 2,
              "keep_last": 2, "log_every": 1},
}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder holding one tiny hinge-GAN run trained for 4 steps."""
    from muselab.train.run import start_run

    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(tmp_path_factory.mktemp("home")))
        start_run(tiny_config("hinge-gan", steps=4, metric_every=0), root).fit()
    return root


@pytest.fixture
def settings(tmp_path: Path, tiny_runs: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from muselab.studio.settings import Settings

    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path / "home"))
    return Settings(db=tmp_path / "studio.sqlite3", media=tmp_path / "media", runs=tiny_runs,
                    models=tmp_path / "models", poll_s=0.05, max_upload_mb=1)


@pytest.fixture
def train_settings(settings: Any, tmp_path: Path) -> Any:
    """Like ``settings`` but with an empty runs folder of its own (training writes there)."""
    return settings.model_copy(update={"runs": tmp_path / "runs"})


@pytest.fixture
def client(settings: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def model_id(client: Any) -> str:
    models = client.get("/api/models").json()
    assert len(models) == 1
    return str(models[0]["id"])
