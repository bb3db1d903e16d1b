"""Music -> video: audio analysis, the latent walk, MP4 / GIF output, bad audio."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile
from typer.testing import CliRunner

from muselab.cli import app
from muselab.crossmodal.audio import analyse, frame_count
from muselab.crossmodal.music2video import (
    WalkConfig,
    ffmpeg_exe,
    grade_params,
    latent_path,
    music_to_video,
)
from muselab.errors import DataError
from muselab.music.tokens import Key

RATE = 16000


def click_track(path: Path, bpm: float = 120.0, seconds: float = 3.0, fade: bool = False,
                freq: float = 440.0) -> Path:
    """A tone with a loud 50 ms click on every beat (optionally fading in)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.1 * np.sin(2 * np.pi * freq * t)
    beat = (t * bpm / 60.0) % 1.0 < (0.05 * bpm / 60.0)
    x = x + 0.6 * beat * np.sin(2 * np.pi * 2 * freq * t)
    if fade:
        x = x * t / seconds
    wavfile.write(path, RATE, (x * 30000).astype(np.int16))
    return path


def short_midi(path: Path, minor: bool = False) -> Path:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    scale = [57, 59, 60, 62, 64, 65, 67, 69] if minor else [60, 62, 64, 65, 67, 69, 71, 72]
    for i, p in enumerate(scale):  # eighth notes at 120 bpm: 2 s
        inst.notes.append(pretty_midi.Note(velocity=60 + 8 * i, pitch=p, start=i * 0.25,
                                           end=(i + 1) * 0.25))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture(scope="module")
def vae() -> object:
    from muselab.models.zoo import load_pipeline

    return load_pipeline("emoji-vae32", device="cpu")


def test_wav_features_follow_the_audio(tmp_path: Path) -> None:
    f = analyse(click_track(tmp_path / "c.wav", bpm=120.0, fade=True), fps=10)
    assert f.frames == frame_count(3.0, 10) == 30
    assert abs(f.tempo - 120.0) < 6.0, f.tempo
    for curve in (f.loudness, f.pitch, f.onsets):
        assert curve.shape == (30,) and curve.min() >= 0 and curve.max() <= 1
    assert f.loudness[-5:].mean() > 3 * f.loudness[:5].mean()  # the fade-in is seen
    g = analyse(click_track(tmp_path / "d.wav", bpm=90.0), fps=10)
    assert abs(g.tempo - 90.0) < 5.0, g.tempo


def test_midi_features(tmp_path: Path) -> None:
    f = analyse(short_midi(tmp_path / "s.mid"), fps=12)
    assert f.kind == "midi" and f.duration == pytest.approx(2.0)
    assert f.frames == 24 and f.tempo == pytest.approx(120.0)
    assert np.all(np.diff(f.pitch) >= 0) and f.pitch[-1] == 1.0  # a rising scale
    assert not f.key.minor


def test_walk_is_seeded_and_follows_loudness_and_key(tmp_path: Path) -> None:
    f = analyse(click_track(tmp_path / "c.wav", fade=True), fps=8)

    def sample_z(n: int, g: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 16, generator=g)

    cfg = WalkConfig(beat_gain=0.0, pitch_gain=0.0)
    a, b = latent_path(f, sample_z, 0, cfg), latent_path(f, sample_z, 0, cfg)
    assert a.shape == (f.frames, 16) and torch.equal(a, b)
    assert not torch.equal(a, latent_path(f, sample_z, 1, cfg))
    norms = a.norm(dim=1)
    assert norms[-4:].mean() > 1.5 * norms[:4].mean()  # quiet start near the origin
    major = dataclasses.replace(f, key=Key(9, False))
    minor = dataclasses.replace(f, key=Key(9, True))
    assert not torch.equal(latent_path(major, sample_z, 0, cfg),
                           latent_path(minor, sample_z, 0, cfg))
    # Palmer et al. 2013: minor -> darker, less saturated, bluer than major.
    assert all(m < j for m, j in zip(grade_params(minor, 1.0), grade_params(major, 1.0),
                                     strict=True))


@pytest.mark.skipif(ffmpeg_exe() is None, reason="no ffmpeg")
def test_mp4_frame_count_is_duration_times_fps(tmp_path: Path, vae: object) -> None:
    import imageio_ffmpeg

    wav = click_track(tmp_path / "c.wav", seconds=2.5)
    res = music_to_video(wav, tmp_path / "v.mp4", fps=8, cfg=WalkConfig(size=64),
                         progress=False, pipe=vae)
    assert res.frames == round(2.5 * 8) == 20
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(res.path))
    assert frames == 20
    probe = subprocess.run([str(ffmpeg_exe()), "-hide_banner", "-i", str(res.path)],
                           capture_output=True, text=True, check=False).stderr
    assert "Audio: aac" in probe and "Video: h264" in probe
    assert (tmp_path / "v.json").is_file() and res.record["seed"] == 0


def test_gif_fallback_and_midi(tmp_path: Path, vae: object) -> None:
    from PIL import Image

    res = music_to_video(short_midi(tmp_path / "s.mid"), tmp_path / "v.mp4", fps=6,
                         cfg=WalkConfig(size=32), fallback=True, progress=False, pipe=vae)
    assert res.path.suffix == ".html" and res.frames == 12
    with Image.open(res.files["gif"]) as gif:
        assert gif.n_frames == 12 and gif.size == (32, 32)
    page = res.path.read_text("utf-8")
    assert "v.gif" in page
    if "wav" in res.files:  # fluidsynth rendered the MIDI
        assert "<audio" in page and Path(res.files["wav"]).stat().st_size > 44


def test_cli_writes_the_fallback_page(tmp_path: Path) -> None:
    wav = click_track(tmp_path / "c.wav", seconds=1.0)
    res = CliRunner().invoke(app, ["music2video", str(wav), "--out", str(tmp_path / "v.mp4"),
                                   "--fps", "5", "--size", "32", "--gif", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "5 frames at 5 fps" in " ".join(res.output.split())
    assert {p.name for p in tmp_path.iterdir()} >= {"v.gif", "v.wav", "v.html", "v.json"}


def test_same_seed_same_frames(tmp_path: Path, vae: object) -> None:
    wav = click_track(tmp_path / "c.wav", seconds=1.0)
    a = music_to_video(wav, tmp_path / "a.mp4", fps=4, cfg=WalkConfig(size=16), fallback=True,
                       progress=False, pipe=vae)
    b = music_to_video(wav, tmp_path / "b.mp4", fps=4, cfg=WalkConfig(size=16), fallback=True,
                       progress=False, pipe=vae)
    assert Path(a.files["gif"]).read_bytes() == Path(b.files["gif"]).read_bytes()


def test_bad_audio_is_a_clear_error(tmp_path: Path) -> None:
    silent, empty, no_samples = tmp_path / "s.wav", tmp_path / "e.wav", tmp_path / "n.wav"
    wavfile.write(silent, RATE, np.zeros(RATE, np.int16))
    empty.write_bytes(b"")
    wavfile.write(no_samples, RATE, np.zeros(0, np.int16))
    for path, words in ((silent, "silent"), (empty, "empty"), (no_samples, "no samples"),
                        (tmp_path / "missing.wav", "does not exist")):
        with pytest.raises(DataError, match=words):
            analyse(path, 12)
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    with pytest.raises(DataError, match="not a MIDI"):
        analyse(txt, 12)
    res = CliRunner().invoke(app, ["music2video", str(silent), "--out", str(tmp_path / "v.mp4")])
    assert res.exit_code == 2 and "silent" in res.output and "Traceback" not in res.output
