"""Bad input on the command line: each case ends with one ``error: ...`` line that names the
file or setting, exit status 2, and no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from muselab.cli import app
from muselab.train import checkpoint as ck
from tests.badinput.conftest import BROKEN_IMAGES, PWNED, evil_pickle, midi_truncated

Args = Callable[[Path], list[str]]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-step VAE run (digits, offline)."""
    from muselab.train.run import start_run
    from tests.tiny import tiny_config

    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(runs.parent / "muselab-home"))
        trainer = start_run(tiny_config("vae", steps=1, metric_every=0, sample_every=0), runs)
        trainer.fit()
    return trainer.run_dir


def _wrong_shapes(tmp: Path, run: Path) -> Path:
    """The run's weights with one tensor of another shape (config metadata kept)."""
    tensors = load_file(str(run / ck.MODEL_FILE))
    name = next(k for k, v in tensors.items() if v.ndim == 4)
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 2)
    out = tmp / "wrong-shapes.safetensors"
    save_file(tensors, str(out), metadata=ck.read_metadata(run / ck.MODEL_FILE))
    return out


def _write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


#: (case, command line given the test's folder, what the message must say)
CASES: list[tuple[str, Args, str]] = [
    *[(f"aesthetics-{name}", lambda t, n=name: ["aesthetics", str(t / "corpus" / n)], name)
      for name in BROKEN_IMAGES],
    ("image-1x1", lambda t: ["aesthetics", str(t / "one.png")], "at least 3x3"),
    ("folder-missing", lambda t: ["data", "inspect", str(t / "nowhere")], "does not exist"),
    ("train-on-junk", lambda t: ["train", "vae", "--data", str(t / "corpus"), "--steps", "1"],
     "decompression bomb"),
    ("image2music-zero-byte", lambda t: ["image2music", str(t / "corpus" / "zero-byte.png"),
                                         "--out", str(t / "out")], "zero-byte.png"),
    ("midi-empty", lambda t: ["compose", "--continue", str(_write(t, "e.mid", b"")),
                              "--out", str(t / "out")], "e.mid is empty"),
    ("midi-truncated", lambda t: ["compose", "--continue",
                                  str(_write(t, "m.mid", midi_truncated())), "--out",
                                  str(t / "out")], "m.mid is not a readable MIDI file"),
    ("midi-is-text", lambda t: ["compose", "--harmonize", str(_write(t, "x.mid", "hello")),
                                "--out", str(t / "out")], "x.mid is not a readable MIDI file"),
    ("config-bad-utf8", lambda t: ["train", "--config",
                                   str(_write(t, "c.toml", b'model = "vae"\n# caf\xe9 \xff\n'))],
     "c.toml is not valid TOML"),
    ("config-bad-json", lambda t: ["train", "--config", str(_write(t, "c.json", "{model: 1"))],
     "c.json is not valid JSON"),
    ("config-unknown-key", lambda t: ["train", "vae", "--set", "train.stepz=3"], "stepz"),
    ("config-negative-steps", lambda t: ["train", "vae", "--set", "train.steps=-1"],
     "train.steps=-1 is out of range"),
    ("config-resolution", lambda t: ["train", "vae", "--res", "33"], "data.resolution=33"),
    ("config-not-a-number", lambda t: ["train", "vae", "--set", "train.lr_backoff=abc"],
     "train.lr_backoff must be a number"),
    ("config-unknown-section", lambda t: ["train", "vae", "--set", "evil.x=1"],
     "unknown section 'evil'"),
    ("poems-bad-utf8", lambda t: ["eval", "poetry", str(_write(t, "p.txt", b"\xff\xfe\xfa\n"))],
     "p.txt"),
    ("unknown-recipe", lambda t: ["train", "no-such-model"], "unknown model 'no-such-model'"),
    ("unknown-run", lambda t: ["sample", "no-such-run", "--out", str(t / "out")],
     "no model 'no-such-run'"),
    ("unknown-music-model", lambda t: ["compose", "--model", "no-such-model", "--out",
                                       str(t / "out")], "'no-such-model'"),
    ("weights-wrong-shapes", lambda t: ["sample", str(t / "wrong-shapes.safetensors"),
                                        "--n", "1", "--out", str(t / "out")],
     "do not fit network"),
    ("pickle-as-.pt", lambda t: ["sample", str(_write(t, "evil.pt", evil_pickle(t / PWNED))),
                                 "--out", str(t / "out")], "never unpickles"),
    ("pickle-as-.safetensors", lambda t: ["compose", "--model", str(
        _write(t, "evil.safetensors", evil_pickle(t / PWNED))), "--out", str(t / "out")],
     "is not a safetensors file"),
    ("pickle-as-style-model", lambda t: ["stylize", str(t / "one.png"), "--method", "fast",
                                         "--model", str(_write(t, "s.safetensors",
                                                               evil_pickle(t / PWNED)))],
     "never unpickles"),
]


@pytest.mark.parametrize(("case", "args", "expect"), CASES, ids=[c[0] for c in CASES])
def test_cli_refuses_clearly(case: str, args: Args, expect: str, corpus: Path, tiny_run: Path,
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(tiny_run.parent.parent / "muselab-home"))
    monkeypatch.chdir(tmp_path)  # `runs/` and outputs land here
    from PIL import Image

    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "one.png")
    _wrong_shapes(tmp_path, tiny_run)
    result = CliRunner().invoke(app, args(tmp_path))
    output = " ".join(result.output.split())
    assert result.exit_code == 2, (result.exit_code, output, result.exception)
    assert "Traceback" not in result.output
    assert "error:" in output and expect in output, output
    written = [p for p in tmp_path.glob("out*") if p.is_file() or any(p.iterdir())]
    assert not written, "nothing is written for refused input"


def test_corpus_size() -> None:
    """The figure quoted in docs/reliability.md."""
    from tests.badinput.test_api import API_CASES

    total = len(CASES) + len(API_CASES)
    assert total >= 30
    print(json.dumps({"cli": len(CASES), "api": len(API_CASES), "total": total}))
