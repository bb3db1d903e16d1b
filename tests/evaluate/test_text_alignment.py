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
    with pytest.raises(ConfigError, match="--n 101"):
        evaluate_alignment(pipe, n=101, features="pixels")


def test_needs_a_text_model(emoji_home: Path) -> None:
    pipe = load_pipeline("emoji-vae32", device="cpu")
    with pytest.raises(ConfigError, match="text-to-image"):
        evaluate_alignment(pipe, n=4, features="pixels")
