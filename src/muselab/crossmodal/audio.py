"""What a piece of music does over time, sampled at a video frame rate.

A MIDI file is read with ``pretty_midi``: loudness is the summed velocity of the sounding
notes, the pitch contour their mean pitch, onsets the note starts, the tempo and key come
from the file (or, without a key signature, the Krumhansl-Schmuckler estimate of
:func:`muselab.music.metrics.estimate_key`). A WAV file is analysed with numpy/scipy:
the RMS envelope (loudness), spectral flux (onset strength, Bello et al. 2005), a tempo
from the autocorrelation of the onset envelope (Ellis 2007 reduced to its core), the
spectral centroid as a pitch contour, and the key from a chroma vector
(Krumhansl-Schmuckler key profiles, Krumhansl 1990).

Silent or zero-length audio is a :class:`~muselab.errors.DataError`, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError
from muselab.music.tokens import Key

#: Below this peak RMS (full scale = 1) a WAV counts as silent (about -80 dBFS).
SILENCE_RMS = 1e-4
#: Tempo search range in beats per minute.
TEMPO_RANGE = (50.0, 200.0)
AUDIO_SUFFIXES = (".wav",)
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass
class AudioFeatures:
    """Per-frame curves of a piece at ``fps`` frames a second (each float32 [T] in [0, 1])."""

    source: str
    kind: str  # "midi" or "wav"
    duration: float  # seconds
    fps: float
    tempo: float  # beats per minute
    key: Key
    loudness: np.ndarray  # [T] envelope, 1 = the loudest frame
    pitch: np.ndarray  # [T] contour, 0 = lowest, 1 = highest in the piece
    onsets: np.ndarray  # [T] onset strength, 1 = the strongest frame

    @property
    def frames(self) -> int:
        return len(self.loudness)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (provenance records)."""
        return {"source": self.source, "kind": self.kind, "duration_s": round(self.duration, 3),
                "fps": self.fps, "frames": self.frames, "tempo_bpm": round(self.tempo, 2),
                "key": str(self.key), "mean_loudness": round(float(self.loudness.mean()), 4)}


def frame_count(duration: float, fps: float) -> int:
    """Frames of a ``duration``-second video at ``fps`` (at least one)."""
    return max(1, round(duration * fps))


def analyse(path: Path, fps: float) -> AudioFeatures:
    """Features of a MIDI or WAV file (chosen by suffix)."""
    if not 1.0 <= fps <= 60.0:
        raise DataError(f"--fps {fps} is out of range [1, 60]")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (zero-length audio)")
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return analyse_midi(path, fps)
    if suffix in AUDIO_SUFFIXES:
        return analyse_wav(path, fps)
    raise DataError(f"{path}: not a MIDI (.mid, .midi) or WAV (.wav) file")


def analyse_midi(path: Path, fps: float) -> AudioFeatures:
    """Features of a MIDI file from its notes."""
    from muselab.music.midi import _load_midi, read_midi

    pm = _load_midi(path)
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    duration = float(pm.get_end_time())
    if not notes or duration <= 0.0 or max(n.velocity for n in notes) == 0:
        raise DataError(f"{path}: the MIDI file is silent (no audible notes)")
    t = frame_count(duration, fps)
    loud, pitch_sum, count, onsets = (np.zeros(t) for _ in range(4))
    for n in notes:
        a, b = int(n.start * fps), max(int(n.start * fps) + 1, int(np.ceil(n.end * fps)))
        loud[a:b] += n.velocity  # [T]
        pitch_sum[a:b] += n.pitch
        count[a:b] += 1
        onsets[min(a, t - 1)] += n.velocity / 127.0
    pitch = _hold(np.where(count > 0, pitch_sum / np.maximum(count, 1), np.nan))  # [T]
    tempi = pm.get_tempo_changes()[1]
    tempo = float(tempi[0]) if len(tempi) else _tempo(onsets, fps)
    key = read_midi(path).key
    return AudioFeatures(str(path), "midi", duration, fps, tempo, key, _unit(loud),
                         _unit(pitch - pitch.min()), _unit(onsets))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate; DataError if unreadable/empty."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(str(path))
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable WAV file ({exc})") from None
    x = np.asarray(data)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max)  # ints: full scale -> 1
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)  # [S] mono
    if x.size == 0 or rate <= 0:
        raise DataError(f"{path} holds no samples (zero-length audio)")
    return x, int(rate)


def analyse_wav(path: Path, fps: float) -> AudioFeatures:
    """Features of a WAV file from its samples."""
    x, rate = read_wav(path)
    duration = len(x) / rate
    hop = rate / fps  # samples per video frame
    t = frame_count(duration, fps)
    win = max(256, int(2 ** np.ceil(np.log2(hop))))  # analysis window >= one frame
    padded = np.pad(x, (win // 2, win))
    starts = (np.arange(t) * hop).astype(int)
    frames = np.stack([padded[s : s + win] for s in starts])  # [T, W]
    rms = np.sqrt((frames**2).mean(axis=1))  # [T]
    if float(rms.max()) < SILENCE_RMS:
        raise DataError(f"{path} is silent (peak RMS {float(rms.max()):.1e} < {SILENCE_RMS:.0e})")
    spec = np.abs(np.fft.rfft(frames * np.hanning(win), axis=1))  # [T, F]
    freqs = np.fft.rfftfreq(win, 1.0 / rate)  # [F]
    flux = np.maximum(np.diff(spec, axis=0, prepend=spec[:1]), 0).sum(axis=1)  # [T]
    centroid = (spec * freqs).sum(axis=1) / np.maximum(spec.sum(axis=1), 1e-12)  # [T] Hz
    pitch = 69 + 12 * np.log2(np.maximum(centroid, 20.0) / 440.0)  # [T] as MIDI numbers
    voiced = rms > 0.05 * rms.max()
    pitch = _hold(np.where(voiced, pitch, np.nan))
    # A shorter hop for tempo: onsets every ~10 ms resolve beats far better than video frames.
    tempo = _tempo(*_fine_flux(x, rate))
    return AudioFeatures(str(path), "wav", duration, fps, tempo, _chroma_key(spec, freqs),
                         _unit(rms), _unit(pitch - pitch.min()), _unit(flux))


def _fine_flux(x: np.ndarray, rate: int, hop_s: float = 0.01) -> tuple[np.ndarray, float]:
    """Spectral flux at a 10 ms hop and its frame rate."""
    hop, win = max(1, int(rate * hop_s)), 1024
    n = max(1, (len(x) - win) // hop + 1) if len(x) >= win else 1
    padded = np.pad(x, (0, max(0, win - len(x))))
    frames = np.stack([padded[i * hop : i * hop + win] for i in range(n)])  # [N, W]
    spec = np.log1p(np.abs(np.fft.rfft(frames * np.hanning(win), axis=1)))  # [N, F]
    flux = np.maximum(np.diff(spec, axis=0, prepend=spec[:1]), 0).sum(axis=1)  # [N]
    return flux, rate / hop


def _tempo(onsets: np.ndarray, rate: float) -> float:
    """The beat rate (bpm) whose lag maximises the onset envelope's autocorrelation.

    Falls back to 120 bpm when the envelope is too short to hold two beats at 50 bpm.
    """
    o = onsets - onsets.mean()
    lo = max(1, int(np.floor(rate * 60.0 / TEMPO_RANGE[1])))  # shortest beat lag
    hi = int(np.ceil(rate * 60.0 / TEMPO_RANGE[0]))  # longest
    if len(o) <= hi + 1 or not np.any(o):
        return 120.0
    ac = np.correlate(o, o, mode="full")[len(o) - 1 :]  # [N] lags 0..N-1
    lags = np.arange(lo, hi + 1)
    # Prefer moderate tempi a little (a log-Gaussian around 120 bpm, as in Ellis 2007).
    bpm = 60.0 * rate / lags
    weight = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
    best = lags[int(np.argmax(ac[lags] * weight))]
    return float(60.0 * rate / best)


def _chroma_key(spec: np.ndarray, freqs: np.ndarray) -> Key:
    """Key of the summed chroma (energy per pitch class, 55 Hz - 4 kHz)."""
    from muselab.music.metrics import estimate_key

    band = (freqs >= 55.0) & (freqs <= 4000.0)
    pcs = np.round(69 + 12 * np.log2(freqs[band] / 440.0)).astype(int) % 12  # [F']
    energy = (spec[:, band] ** 2).sum(axis=0)  # [F']
    chroma = np.bincount(pcs, weights=energy, minlength=12)  # [12]
    return estimate_key([60 + pc for pc in range(12)], list(chroma))


def _hold(x: np.ndarray) -> np.ndarray:
    """Fill NaN gaps with the last value before them (the first value before the start)."""
    valid = ~np.isnan(x)
    if not valid.any():
        return np.zeros_like(x)
    idx = np.where(valid, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    first = x[valid][0]
    return np.where(np.isnan(out), first, out)


def _unit(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the maximum (all zeros stays zeros), float32."""
    top = float(np.max(x)) if x.size else 0.0
    return (x / top if top > 0 else np.zeros_like(x)).astype(np.float32)


def envelope_image(f: AudioFeatures, height: int = 96, min_width: int = 480) -> np.ndarray:
    """uint8 [height, T * px, 3] (px: at least 2, enough for ``min_width``): the loudness
    envelope as grey bars, the pitch contour as a red line and strong onsets as blue ticks
    (a picture of a WAV where MIDI has a piano roll)."""
    px = max(2, -(-min_width // f.frames))
    w = f.frames * px
    img = np.full((height, w, 3), 255, np.uint8)
    for t in range(f.frames):
        x = slice(t * px, (t + 1) * px)
        bar = int(round(float(f.loudness[t]) * (height - 8)))
        img[height - bar :, x] = 200  # loudness from the bottom
        if f.onsets[t] > 0.5:
            img[:6, x] = (31, 119, 180)  # strong onsets along the top
        y = int(round((1.0 - float(f.pitch[t])) * (height - 9))) + 4
        img[y : y + 2, x] = (214, 39, 40)  # pitch contour
    return img
