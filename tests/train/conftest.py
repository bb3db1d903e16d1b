"""Fixtures for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runs directory; the data home is shared so digits is decoded once."""
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path.parent / "muselab-home"))
    return tmp_path / "runs"
