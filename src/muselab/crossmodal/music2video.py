"""Music -> video: a piece steers a walk through an image model's latent space.

The features of :mod:`muselab.crossmodal.audio` drive the walk frame by frame:

* **tempo**: one latent anchor per bar; each beat gives a short push along a fixed
  latent direction that decays before the next beat (the picture pulses on the beat);
* **loudness envelope**: the distance from the latent origin (the model's "average"
  image): quiet passages fade towards it, loud ones reach vivid, specific images;
  together with the onsets it also sets the speed of the walk (busy music moves faster);
* **pitch contour**: an offset along a second fixed direction (high notes and low notes
  give consistently different images);
* **key**: the tonic and mode choose the anchors (the same key gives the same family of
  images) and a colour grade following the music-colour associations of Palmer et al.
  (2013, PNAS 110(22)): major and fast music -> lighter, more saturated, yellower colours;
  minor and slow music -> darker, less saturated, bluer ones.

Anchors are slerped (White 2016), so the path stays at a typical latent norm. Frames are
rendered as an MP4 (H.264, the audio muxed in as AAC) with the ffmpeg binary shipped by
the ``imageio-ffmpeg`` wheel; without it, as a GIF plus a WAV played by an HTML page.
The frame count is ``round(duration x fps)``, so video and audio end together.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from muselab import __version__
from muselab.config import check_range
from muselab.crossmodal.audio import AudioFeatures, analyse
from muselab.errors import ConfigError
from muselab.image.latent import slerp
from muselab.io import atomic_open, atomic_write, ensure_dir, write_json

#: Beats per latent anchor (one bar of 4/4).
BEATS_PER_ANCHOR = 4


@dataclass
class WalkConfig:
    """How strongly each musical feature moves the latent (all checked)."""

    pitch_gain: float = 0.6  # offset along the pitch direction at the extremes of the contour
    beat_gain: float = 0.35  # push on each beat (decays with ``beat_decay`` of a beat)
    beat_decay: float = 0.25
    quiet_scale: float = 0.45  # latent scale at silence (1 = loudest)
    size: int = 256  # output frame side in pixels (a multiple of 16 for H.264)
    grade: float = 1.0  # strength of the key/tempo colour grade (0 = none)

    def __post_init__(self) -> None:
        check_range("pitch_gain", self.pitch_gain, 0.0, 4.0)
        check_range("beat_gain", self.beat_gain, 0.0, 4.0)
        check_range("beat_decay", self.beat_decay, 0.01, 1.0)
        check_range("quiet_scale", self.quiet_scale, 0.0, 1.0)
        check_range("grade", self.grade, 0.0, 2.0)
        if self.size % 16 or not 16 <= self.size <= 1024:
            raise ConfigError(f"--size {self.size}: use a multiple of 16 in [16, 1024]")


@dataclass
class VideoResult:
    """What :func:`music_to_video` wrote."""

    path: Path  # the MP4, or the HTML page of the fallback
    frames: int
    fps: float
    duration: float
    files: dict[str, str]
    record: dict[str, Any]


def anchor_count(features: AudioFeatures) -> int:
    """One anchor per bar of the piece, plus the end point (at least two)."""
    bar_s = 60.0 / features.tempo * BEATS_PER_ANCHOR
    return max(2, int(np.ceil(features.duration / bar_s)) + 1)


def key_seed(seed: int, features: AudioFeatures) -> int:
    """The anchors' seed: the same key (tonic + mode) and seed give the same images."""
    return seed * 24 + features.key.tonic + 12 * int(features.key.minor)


def latent_path(features: AudioFeatures, sample_z: Callable[[int, torch.Generator], Tensor],
                seed: int, cfg: WalkConfig) -> Tensor:
    """One latent per frame, [T, Z] (see the module docstring)."""
    g = torch.Generator().manual_seed(key_seed(seed, features))
    k = anchor_count(features)
    anchors = sample_z(k, g)  # [K, Z]
    if anchors.ndim != 2:
        raise ConfigError("music2video needs a model with a flat latent (a VAE or GAN); "
                          f"this one has latents of shape {tuple(anchors.shape[1:])}")
    d_pitch, d_beat = sample_z(2, g)  # [Z] each, ~N(0, I)
    t = features.frames
    activity = 0.3 + 0.35 * torch.from_numpy(features.onsets + features.loudness)  # [T]
    u = torch.cumsum(activity.double(), 0) - activity[0]  # [T] walk progress, from 0
    u = (u / u[-1].clamp_min(1e-9) * (k - 1)).float() if t > 1 else torch.zeros(1)
    i = u.floor().long().clamp(0, k - 2)  # [T] segment
    z = slerp(anchors[i], anchors[i + 1], u - i)  # [T, Z]
    pitch = torch.from_numpy(features.pitch)[:, None] - 0.5  # [T, 1] in [-0.5, 0.5]
    z = z + 2 * cfg.pitch_gain * pitch * d_pitch
    secs = torch.arange(t, dtype=torch.float64) / features.fps
    phase = torch.remainder(secs * features.tempo / 60.0, 1.0).float()  # [T] beat phase
    z = z + cfg.beat_gain * torch.exp(-phase / cfg.beat_decay)[:, None] * d_beat
    loud = torch.from_numpy(features.loudness)[:, None]  # [T, 1]
    return z * (cfg.quiet_scale + (1 - cfg.quiet_scale) * loud)  # [T, Z]


def grade_params(features: AudioFeatures, strength: float) -> tuple[float, float, float]:
    """(lightness gain, saturation gain, yellow-blue shift) for the piece's mode and tempo.

    Palmer et al. (2013): faster music and the major mode go with lighter, more saturated
    and yellower colours. Mode and tempo each contribute half.
    """
    mode = -1.0 if features.key.minor else 1.0
    fast = float(np.clip((features.tempo - 100.0) / 60.0, -1.0, 1.0))
    arousal = 0.5 * mode + 0.5 * fast  # [-1, 1]
    return (1.0 + 0.15 * strength * arousal, 1.0 + 0.35 * strength * arousal,
            0.06 * strength * arousal)


def grade(frames: np.ndarray, params: tuple[float, float, float]) -> np.ndarray:
    """Colour-grade uint8 [T, H, W, 3] frames (lightness, saturation, yellow-blue)."""
    light, sat, yb = params
    x = frames.astype(np.float32) / 255.0  # [T, H, W, 3]
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)  # [T, H, W]
    x = luma[..., None] + sat * (x - luma[..., None])  # saturation about the grey axis
    x = x * light + np.array([yb, yb, -yb], np.float32)  # yellow = +R +G -B
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_frames(pipe: Any, z: Tensor, size: int, progress: bool = True,
                  batch: int = 64) -> np.ndarray:
    """Decode latents [T, Z] into uint8 frames [T, size, size, 3] (Lanczos upscaling)."""
    from PIL import Image

    from muselab.data.imagefolder import make_progress

    out = np.empty((len(z), size, size, 3), np.uint8)
    with make_progress(progress) as bar:
        job = bar.add_task("rendering frames", total=len(z))
        for a in range(0, len(z), batch):
            imgs = pipe.decode(z[a : a + batch])  # [B, R, R, C]
            for j, img in enumerate(imgs):
                rgb = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
                out[a + j] = np.asarray(Image.fromarray(rgb).resize((size, size),
                                                                    Image.Resampling.LANCZOS))
            bar.advance(job, len(imgs))
    return out


def ffmpeg_exe() -> str | None:
    """The ffmpeg binary of the imageio-ffmpeg wheel (or on PATH); None when there is none."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def write_mp4(path: Path, frames: np.ndarray, fps: float, audio: Path | None,
              comment: str) -> None:
    """H.264 MP4 of uint8 [T, H, W, 3] frames with ``audio`` muxed in as AAC (atomic)."""
    import imageio_ffmpeg

    h, w = frames.shape[1:3]

    def write(tmp: str) -> None:
        writer = imageio_ffmpeg.write_frames(
            tmp, (w, h), fps=fps, quality=7, macro_block_size=16, ffmpeg_log_level="error",
            audio_path=str(audio) if audio else None, audio_codec="aac" if audio else None,
            output_params=["-metadata", f"comment={comment}", *(["-shortest"] if audio else [])])
        writer.send(None)  # start the generator
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()

    atomic_write(path, write)


def audio_for(source: Path, features: AudioFeatures, workdir: Path) -> tuple[Path | None, str]:
    """A WAV of the piece for muxing, and a note when there is none."""
    if features.kind == "wav":
        return source, ""
    from muselab.music.midi import render_wav

    wav = workdir / "audio.wav"
    note = render_wav(source, wav)
    return (None, note) if note else (wav, "")


def music_to_video(piece: Path, out: Path, *, model: str = "emoji-vae32", fps: float = 12.0,
                   seed: int = 0, cfg: WalkConfig | None = None, device: str = "auto",
                   fallback: bool = False, progress: bool = True,
                   pipe: Any = None) -> VideoResult:
    """Render ``piece`` (MIDI or WAV) as a video at ``out`` (see the module docstring).

    ``fallback=True`` (or no ffmpeg) writes ``out``'s stem as .gif + .wav + .html instead.
    ``pipe`` is an already loaded image pipeline (else ``model`` is loaded from the zoo).
    """
    cfg = cfg or WalkConfig()
    check_range("fps", fps, 1.0, 60.0)
    features = analyse(piece, fps)  # bad audio fails before the model loads
    if pipe is None:
        from muselab.models.zoo import load_pipeline

        pipe = load_pipeline(model, device=device)
    z = latent_path(features, lambda n, g: pipe.task.sample_z(n, g), seed, cfg)  # [T, Z]
    frames = grade(render_frames(pipe, z, cfg.size, progress),
                   grade_params(features, cfg.grade))  # [T, S, S, 3]
    record = {"kind": "music2video", "piece": str(piece), "seed": seed, "fps": fps,
              "frames": len(frames), "audio": features.summary(), "walk": cfg.__dict__,
              "anchors": anchor_count(features), **pipe.provenance(),
              "muselab_version": __version__}
    ensure_dir(out.parent)
    exe = None if fallback else ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="muselab-m2v-") as tmp:
        wav, note = audio_for(piece, features, Path(tmp))
        if note:
            record["audio_note"] = note
        if exe is not None:
            files = {"video": str(out)}
            write_mp4(out, frames, fps, wav, json.dumps(record, sort_keys=True, default=str))
            path = out
        else:
            files = _write_fallback(out, frames, fps, wav, record)
            path = Path(files["html"])
    record["files"] = files
    write_json(out.with_suffix(".json"), record)
    return VideoResult(path, len(frames), fps, features.duration, files, record)


def _write_fallback(out: Path, frames: np.ndarray, fps: float, wav: Path | None,
                    record: dict[str, Any]) -> dict[str, str]:
    """GIF + WAV + an HTML page that starts both together."""
    from muselab.image.io import save_gif

    gif, page = out.with_suffix(".gif"), out.with_suffix(".html")
    save_gif(gif, list(frames), fps=fps, loop=False, comment=json.dumps(record, default=str))
    files = {"gif": str(gif), "html": str(page)}
    audio_tag = ""
    if wav is not None:
        target = out.with_suffix(".wav")
        if wav.resolve() != target.resolve():
            atomic_write(target, lambda tmp: _copy(wav, tmp))
        files["wav"] = str(target)
        audio_tag = f'<audio id="a" src="{html.escape(target.name)}" controls></audio>'
    with atomic_open(page, "w") as fh:
        fh.write(_PAGE.format(title=html.escape(Path(record["piece"]).name),
                              gif=html.escape(gif.name), audio=audio_tag,
                              meta=html.escape(json.dumps(record, indent=1, default=str))))
    return files


def _copy(src: Path, dst: str) -> None:
    shutil.copyfile(src, dst)


_PAGE = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>muselab music2video: {title}</title>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>{title}</h1>
<p>Press play: the animation restarts with the music (no ffmpeg was available for an MP4).</p>
<img id="v" alt="video frames" width="256" height="256" style="image-rendering:auto"><br>
{audio}
<details><summary>provenance</summary><pre>{meta}</pre></details>
<script>
const v = document.getElementById("v"), a = document.getElementById("a");
const start = () => {{ v.src = "{gif}?" + Date.now(); }};
if (a) {{ a.addEventListener("play", start); }} else {{ start(); }}
</script>
</body></html>
"""
