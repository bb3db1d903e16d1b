"""``muselab eval`` end to end on a tiny trained run: metrics, copies, report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from muselab.cli import app

runner = CliRunner()

TINY = ["--set", "model_config.net.g_width=8", "--set", "model_config.net.d_width=8",
        "--set", "model_config.net.max_width=32", "--set", "train.metric_n=16",
        "--set", "train.sample_n=4", "--set", "train.metric_every=2",
        "--set", "train.tensorboard=false"]
FAST = ["--features", "pixels", "--no-progress"]


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("eval")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(base.parent / "muselab-home"))
        mp.setenv("MUSELAB_RUNS", str(base / "runs"))
        code, out = invoke("train", "hinge-gan", "--data", "digits", "--res", "32", "--steps",
                           "2", "--batch", "8", "--limit", "64", "--no-progress", *TINY)
        assert code == 0, out
    return base


@pytest.fixture
def run(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSELAB_HOME", str(env.parent / "muselab-home"))
    monkeypatch.setenv("MUSELAB_RUNS", str(env / "runs"))
    return env / "runs" / "00000-hinge-gan-digits32"


def eval_records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("source") == "eval"]


def test_metrics_print_n_and_ci_and_append_to_the_run(run: Path) -> None:
    code, out = invoke("eval", "0", "--ref", "digits", "--metrics", "fid,kid,pr,dc",
                       "--n", "40", "--bootstrap", "3", *FAST)
    assert code == 0, out
    assert "95% CI" in out and "N ref" in out and "too small for FID" in out
    recs = eval_records(run)
    assert [r["metric"] for r in recs] == ["fid", "kid", "precision", "recall", "density",
                                           "coverage"]
    for r in recs:
        assert r["step"] == 2 and r["n_real"] == r["n_fake"] == r["n"] == 40
        assert r["features"] == "pixels" and r["ci_low"] <= r["ci_high"]
        assert np.isfinite(r["value"]) and r["ref"] == "digits" and r["seed"] == 0
    assert "std" in recs[1]
    # the same call again gives the same numbers (generation and bootstrap are seeded)
    code, out = invoke("eval", "0", "--ref", "digits", "--metrics", "kid", "--n", "40",
                       "--bootstrap", "3", *FAST)
    assert code == 0, out
    again = eval_records(run)[-1]
    assert (again["value"], again["ci_low"]) == (recs[1]["value"], recs[1]["ci_low"])


def fit_value_model(folder: Path) -> Path:
    """A value model fitted on digits rated by colourfulness (the aesthetics helper's API)."""
    value = pytest.importorskip("muselab.evaluate.value")
    from muselab.data import load_images
    from muselab.evaluate.aesthetics import colourfulness

    images = load_images("digits", 32, limit=60, progress=False).images
    tint = np.random.default_rng(0).random((60, 1, 1, 3))
    images = (images * tint).astype(np.uint8)
    c = colourfulness(images)
    classes = np.digitize(c, np.quantile(c, [1 / 3, 2 / 3]))
    model = value.ValueModel(value.ValueConfig(backbone="none"))
    model.fit_images(list(images), classes, classes.astype(float))
    return Path(model.save(folder))


def test_copies_writes_a_contact_sheet_and_report(run: Path, tmp_path: Path) -> None:
    code, out = invoke("eval", "copies", str(run), "--n", "12", "--top", "4", *FAST)
    assert code == 0, out
    summary = json.loads((run / "eval" / "copies.json").read_text())
    assert summary["n_generated"] == 12 and summary["n_train"] == 64
    assert len(summary["matches"]) == 12 and (run / "eval" / "copies.png").is_file()
    assert "generated images flagged" in out
    assert eval_records(run)[-1]["metric"] == "copies"
    # a torn last line (a crash mid-write) does not break the report
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 2, "metric": "fi')
    vm = fit_value_model(tmp_path / "vm")
    code, out = invoke("eval", "report", "0", "--n", "8", "--value-model", str(vm))
    assert code == 0, out
    md = (run / "report" / "report.md").read_text()
    for heading in ("Latest scores", "Metrics over training", "Memorisation check",
                    "Computational aesthetics", "Value model"):
        assert f"## {heading}" in md
    assert "Skipped" not in md and "held-out accuracy" in md
    assert (run / "report" / "value.png").is_file() and (run / "report" / "copies.png").is_file()
    assert (run / "report" / "curve-swd.png").is_file() and "<table>" in (
        run / "report" / "report.html").read_text()


def write_pngs(folder: Path, sizes: list[int], seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, s in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (s, s + i % 3, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png")
    return folder


def test_folders_of_different_sizes_are_resized(run: Path, tmp_path: Path) -> None:
    a = write_pngs(tmp_path / "a", [20, 48, 33, 64, 40, 25, 30, 52], seed=0)
    b = write_pngs(tmp_path / "b", [64, 18, 40, 36, 31, 22, 70, 44], seed=1)
    code, out = invoke("eval", str(a), "--ref", str(b), "--metrics", "kid,pr", "--res", "16",
                       "--n", "8", "--bootstrap", "0", *FAST)
    assert code == 0, out
    assert "at 16px" in out


def test_bad_input_is_one_clear_line_and_exit_2(run: Path, tmp_path: Path) -> None:
    few = write_pngs(tmp_path / "few", [32, 32, 32], seed=2)
    code, out = invoke("eval", str(few), "--ref", "digits", "--metrics", "pr", *FAST)
    assert code == 2 and "pr needs at least 4 images in each set; got" in out
    code, out = invoke("eval", "0", "--metrics", "fid,inception-score", *FAST)
    assert code == 2 and "unknown metric 'inception-score'" in out
    code, out = invoke("eval", "0", "--features", "sift", "--no-progress")
    assert code == 2 and "--features 'sift' is not a feature extractor" in out
    code, out = invoke("eval", "copies", str(few), *FAST)
    assert code == 2 and "--ref" in out
    code, out = invoke("eval", "report", str(few))
    assert code == 2 and "not a run directory" in out
    code, out = invoke("eval", "report", "0", "--value-model", str(few))
    assert code == 2 and "no value model there" in out


def test_feature_weights_of_the_wrong_shape_exit_2(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("muselab.models.backbones")
    bad = tmp_path / "wrong.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(4, 3, 3, 3)}, bad)
    code, out = invoke("eval", "0", "--ref", "digits", "--features", "fid-inception",
                       "--feature-weights", str(bad), "--n", "8", "--no-progress")
    assert code == 2 and "wrong.pth" in out and "error:" in out
