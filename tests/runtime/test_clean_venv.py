"""``muselab[runtime]`` in a fresh venv without torch samples an exported GAN and U-Net.

The venv gets only onnxruntime, numpy and Pillow (the versions of this environment, so
pip's cache answers) and muselab itself with ``--no-deps``. About a minute; CI runs it
(``slow`` tests are not deselected by default).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from muselab.export.api import export_model
from muselab.train.run import start_run
from tests.tiny import tiny_config

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DEPS = ("onnxruntime", "numpy", "pillow")


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _pip(venv: Path, *args: str) -> None:
    res = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                "--disable-pip-version-check", *args], venv)
    if res.returncode and ("NewConnectionError" in res.stderr or "No matching distribution"
                           in res.stderr):
        pytest.skip(f"no package index reachable for the clean venv: {res.stderr[-300:]}")
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.slow
def test_runtime_extra_samples_gan_and_unet_without_torch(tmp_path: Path) -> None:
    exports = {}
    for model in ("dcgan", "diffusion"):
        trainer = start_run(tiny_config(model, steps=2, sample_every=0, metric_every=0,
                                        checkpoint_every=2), tmp_path / "runs")
        trainer.fit()
        exports[model] = export_model(str(trainer.run_dir), tmp_path / model).parent

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    res = _run([base, "-m", "venv", str(venv)], tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    _pip(venv, *(f"{name}=={version(name)}" for name in RUNTIME_DEPS))
    _pip(venv, "--no-deps", str(ROOT))

    py = str(venv / "bin" / "python")
    res = _run([py, "-c", "import importlib.util as u; assert u.find_spec('torch') is None"],
               tmp_path)
    assert res.returncode == 0, "torch is importable in the clean venv"
    script = venv / "bin" / "muselab-run"  # the console script, once pyproject declares it
    cli = [str(script)] if script.exists() else [py, "-m", "muselab.runtime.cli"]
    for model, folder in exports.items():
        out = tmp_path / f"samples-{model}"
        res = _run([*cli, "sample", str(folder / "model.onnx"), "--seeds", "0-3", "--steps",
                    "3", "--out", str(out)], tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
        assert sorted(p.name for p in out.glob("*.png")) == [
            "grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
