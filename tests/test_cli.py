"""The command line through Typer's runner: happy paths and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from muselab import __version__
from muselab.cli import app
from muselab.image.io import read_png_metadata

runner = CliRunner()

TINY = ["--set", "model_config.net.g_width=8", "--set", "model_config.net.d_width=8",
        "--set", "model_config.net.max_width=32", "--set", "train.metric_n=32",
        "--set", "train.sample_n=4", "--set", "train.metric_every=2",
        "--set", "train.tensorboard=false"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path.parent / "muselab-home"))
    monkeypatch.setenv("MUSELAB_RUNS", str(tmp_path / "runs"))
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def trained(env: Path) -> Path:
    code, out = invoke("train", "hinge-gan", "--data", "digits", "--res", "32", "--steps", "2",
                       "--batch", "8", "--limit", "64", "--no-progress", *TINY)
    assert code == 0, out
    return env / "runs" / "00000-hinge-gan-digits32"


def test_version() -> None:
    code, out = invoke("--version")
    assert code == 0 and __version__ in out


def test_train_sample_interpolate_and_list(trained: Path, env: Path) -> None:
    assert (trained / "model.safetensors").is_file()
    code, out = invoke("sample", "0", "--n", "5", "--seed", "10", "--out", str(env / "s"))
    assert code == 0, out
    pngs = sorted((env / "s").glob("seed*.png"))
    assert [p.name for p in pngs] == [f"seed{s:06d}.png" for s in range(10, 15)]
    meta = read_png_metadata(pngs[0])
    assert meta["seed"] == 10 and meta["model"] == "hinge-gan" and meta["step"] == 2
    assert meta["run"] == trained.name and meta["muselab_version"] == __version__
    assert Image.open(pngs[0]).text["muselab:seed"] == "10"
    # the same seed gives the same image, alone or in a batch
    code, _ = invoke("sample", str(trained), "--n", "1", "--seed", "12", "--out", str(env / "t"))
    assert code == 0
    a = np.asarray(Image.open(env / "s" / "seed000012.png"))
    b = np.asarray(Image.open(env / "t" / "seed000012.png"))
    assert np.array_equal(a, b)

    code, out = invoke("interpolate", "0", "--seeds", "1", "--seeds", "2", "--frames", "6",
                       "--out", str(env / "walk.gif"), "--scale", "2")
    assert code == 0, out
    gif = Image.open(env / "walk.gif")
    assert gif.n_frames == 7 and gif.size == (64, 64)

    code, out = invoke("runs", "list")
    assert code == 0 and trained.name in out and "hinge-gan" in out


def test_resume_from_the_cli(trained: Path) -> None:
    code, out = invoke("train", "--resume", "0", "--steps", "3", "--no-progress")
    assert code == 0, out
    state = json.loads((trained / "config.json").read_text())
    assert state["train"]["steps"] == 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "gann", "--data", "digits"], "unknown model 'gann'"),
        (["train", "dcgan", "--data", "/no/such/folder"], "/no/such/folder"),
        (["train", "dcgan", "--data", "digits", "--steps", "0"], "train.steps"),
        (["train", "dcgan", "--data", "digits", "--set", "model_config.lr_g=fast"], "lr_g"),
        (["train", "dcgan", "--data", "digits", "--set", "nokey"], "--set 'nokey'"),
        (["train", "dcgan", "--config", "missing.toml"], "missing.toml"),
        (["sample", "99"], "no model '99'"),
        (["data", "inspect", "/no/such/dir"], "/no/such/dir"),
    ],
)
def test_bad_input_is_one_clear_line(env: Path, args: list[str], needle: str) -> None:
    code, out = invoke(*args)
    assert code == 2, out
    assert needle in out
    assert "Traceback" not in out
    assert not (env / "runs").exists() or not any((env / "runs").iterdir())


def test_empty_folder_and_unwritable_output(env: Path, trained: Path) -> None:
    empty = env / "empty"
    empty.mkdir()
    code, out = invoke("train", "dcgan", "--data", str(empty))
    assert code == 2 and str(empty) in out
    blocker = env / "file.txt"
    blocker.write_text("x")
    code, out = invoke("sample", "0", "--n", "2", "--out", str(blocker / "sub"))
    assert code == 2 and "sub" in out
    assert not (blocker.parent / "sub").exists()


def test_data_list_and_inspect(env: Path) -> None:
    code, out = invoke("data", "list")
    assert code == 0
    assert "emoji-twitter" in out and "CC-BY-4.0" in out and "Apache-2.0" in out
    folder = env / "pics"
    folder.mkdir()
    for i in range(3):
        Image.new("RGBA", (40, 20), (i * 80, 0, 0, 255)).save(folder / f"{i}.png")
    (folder / "bad.png").write_bytes(b"not a png")
    sheet = env / "sheet.png"
    code, out = invoke("data", "inspect", str(folder), "--out", str(sheet))
    assert code == 0, out
    assert "bad.png" in out and "3" in out
    assert Image.open(sheet).size[0] > 0


def test_models_lists_the_recipes() -> None:
    code, out = invoke("models")
    assert code == 0
    for name in ("dcgan", "dcgan-da", "hinge-gan", "wgan-gp", "vae"):
        assert name in out
    assert "dcgan (default)" in out


@pytest.mark.parametrize("name", ["emoji32.toml", "tiny-digits.toml"])
def test_shipped_configs_resolve(name: str) -> None:
    from muselab.config import load_file
    from muselab.train.run import resolve_config

    root = Path(__file__).resolve().parents[1]
    cfg = resolve_config(file=load_file(root / "configs" / name))
    assert cfg.train.steps > 0 and cfg.data.resolution == 32
