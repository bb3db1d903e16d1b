"""``muselab compose`` and ``muselab eval music`` end to end, with the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muselab.cli import app
from muselab.music.midi import read_midi
from tests.music.fixtures import CHORALES, FOLK

MODEL = Path(__file__).resolve().parents[2] / "models" / "bach-chorale"
runner = CliRunner()


def compose(*args: str) -> object:
    return runner.invoke(app, ["compose", "--model", str(MODEL), *args])


def test_compose_writes_midi_png_json_and_is_seeded(tmp_path: Path) -> None:
    r = compose("--bars", "2", "--key", "D minor", "--seed", "5", "--no-wav",
                "--out", str(tmp_path / "a"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    for suffix in (".mid", ".png", ".json"):
        assert (tmp_path / f"a{suffix}").is_file()
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["seed"] == 5 and meta["key"] == "D minor" and meta["bars"] == 2
    compose("--bars", "2", "--key", "D minor", "--seed", "5", "--no-wav",
            "--out", str(tmp_path / "b"))
    assert read_midi(tmp_path / "a.mid").notes == read_midi(tmp_path / "b.mid").notes
    assert {n.voice for n in read_midi(tmp_path / "a.mid").notes} == {0, 1, 2, 3}


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_compose_renders_wav(tmp_path: Path) -> None:
    r = compose("--bars", "1", "--out", str(tmp_path / "w"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    wav = tmp_path / "w.wav"
    assert wav.read_bytes()[:4] == b"RIFF" and wav.stat().st_size > 10_000


def test_missing_fluidsynth_still_writes_midi(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("muselab.music.midi.shutil.which", lambda name: None)
    r = compose("--bars", "1", "--out", str(tmp_path / "m"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "fluidsynth is not installed" in r.output  # type: ignore[attr-defined]
    assert (tmp_path / "m.mid").is_file() and not (tmp_path / "m.wav").exists()


def test_continue_and_harmonize(tmp_path: Path) -> None:
    r = compose("--continue", str(FOLK), "--style", "folk", "--bars", "1", "--no-wav",
                "--out", str(tmp_path / "c"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    given = read_midi(FOLK)
    assert read_midi(tmp_path / "c.mid").notes[: len(given.notes)] == given.notes
    r = compose("--harmonize", str(CHORALES[1]), "--no-wav", "--out", str(tmp_path / "h"))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    voices = {n.voice for n in read_midi(tmp_path / "h.mid").notes}
    assert voices == {0, 1, 2, 3}


@pytest.mark.parametrize(("args", "message"), [
    (["--key", "H major"], "--key"),
    (["--meter", "7/8"], "--meter"),
    (["--style", "jazz"], "--style"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_bad_arguments_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    r = compose("--bars", "1", "--no-wav", "--out", str(tmp_path / "x"), *args)
    assert r.exit_code == 2 and message in r.output  # type: ignore[attr-defined]
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_bad_midi_inputs_exit_2(tmp_path: Path) -> None:
    empty, junk = tmp_path / "empty.mid", tmp_path / "junk.mid"
    empty.write_bytes(b"")
    junk.write_bytes(b"RIFF....garbage")
    for flag, path, message in (("--harmonize", empty, "empty"),
                                ("--continue", junk, "not a readable MIDI"),
                                ("--continue", tmp_path / "none.mid", "does not exist")):
        r = compose(flag, str(path), "--out", str(tmp_path / "o"))
        assert r.exit_code == 2 and message in r.output, r.output  # type: ignore[attr-defined]
    assert not (tmp_path / "o.mid").exists()


def test_eval_music(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = [read_midi(p) for p in CHORALES]
    monkeypatch.setattr("muselab.music.evaluate.reference_pieces", lambda corpus: real)
    folder = tmp_path / "gen"
    folder.mkdir()
    for p in CHORALES:
        shutil.copy(p, folder / p.name)
    r = runner.invoke(app, ["eval", "music", str(folder)])
    assert r.exit_code == 0, r.output
    report = json.loads((folder / "music-metrics.json").read_text())
    assert report["n"] == {"generated": 2, "real": 2, "random": 2}
    assert all(report["inside_real_range"].values())  # the same pieces are inside
    empty = tmp_path / "nothing"
    empty.mkdir()
    r = runner.invoke(app, ["eval", "music", str(empty)])
    assert r.exit_code == 2 and "no .mid files" in r.output
