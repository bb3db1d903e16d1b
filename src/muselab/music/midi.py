"""MIDI files in and out (pretty_midi), WAV through the fluidsynth binary, piano rolls.

WAV rendering uses the General MIDI soundfont ``TimGM6mb.sf2`` shipped inside the
``pretty_midi`` wheel (GPL-2.0, by Tim Brechbill), played by the ``fluidsynth``
command-line program (Debian package ``fluidsynth``). Without the binary a clear
message is returned and the MIDI file is still written.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from muselab.errors import DataError, MuselabError
from muselab.io import atomic_write
from muselab.music.tokens import (
    N_VOICES,
    PITCH_HI,
    PITCH_LO,
    TIME_SIGS,
    TPQ,
    Key,
    Note,
    Piece,
)

#: General MIDI programs per style: church organ for chorales, flute for folk tunes.
PROGRAMS = {"bach": 19, "folk": 73, "other": 0}
#: Piano-roll colours of voices 0-3 (soprano red, alto orange, tenor green, bass blue).
VOICE_COLOURS = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180))


def soundfont_path() -> Path:
    """The ``TimGM6mb.sf2`` soundfont inside the installed ``pretty_midi`` package."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise MuselabError(f"soundfont {path} is missing (reinstall pretty_midi==0.2.11.post0)")
    return path


def read_midi(path: Path, *, style: str = "other") -> Piece:
    """A :class:`Piece` from a MIDI file: non-drum tracks become voices (highest first).

    Times are quantised to the sixteenth grid; pitches outside the tokenizer range are
    moved by octaves into it. Raises :class:`DataError` for a missing, malformed or
    empty file, or more than four sounding tracks.
    """
    pm = _load_midi(path)
    tracks = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not tracks:
        raise DataError(f"{path}: the MIDI file has no notes")
    if len(tracks) > N_VOICES:
        raise DataError(f"{path}: {len(tracks)} tracks with notes; at most {N_VOICES} voices "
                        "are supported")
    tracks.sort(key=lambda i: -float(np.mean([n.pitch for n in i.notes])))

    def tick(seconds: float) -> int:
        return round(pm.time_to_tick(seconds) * TPQ / pm.resolution)

    notes = []
    for voice, inst in enumerate(tracks):
        for n in inst.notes:
            start = tick(n.start)
            notes.append(Note(start, max(1, tick(n.end) - start), _fold(n.pitch), voice,
                              int(n.velocity)))
    return Piece(notes=notes, key=_midi_key(pm), time_signature=_midi_time_signature(pm, path),
                 tempo=_midi_tempo(pm), style=style)


def _load_midi(path: Path) -> Any:
    import pretty_midi

    if not path.is_file():
        raise DataError(f"MIDI file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"MIDI file {path} is empty")
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types on corrupt files
        raise DataError(f"{path} is not a readable MIDI file ({type(exc).__name__}: {exc})") \
            from None


def _fold(pitch: int) -> int:
    while pitch < PITCH_LO:
        pitch += 12
    while pitch > PITCH_HI:
        pitch -= 12
    return pitch


def _midi_key(pm: Any) -> Key:
    if pm.key_signature_changes:
        number = int(pm.key_signature_changes[0].key_number)  # 0-11 major, 12-23 minor
        return Key(number % 12, number >= 12)
    from muselab.music.metrics import estimate_key

    notes = [(n.pitch, n.end - n.start) for i in pm.instruments if not i.is_drum
             for n in i.notes]
    return estimate_key([p for p, _ in notes], [d for _, d in notes])


def _midi_time_signature(pm: Any, path: Path) -> tuple[int, int]:
    if not pm.time_signature_changes:
        return (4, 4)
    ts = pm.time_signature_changes[0]
    sig = (int(ts.numerator), int(ts.denominator))
    if sig not in TIME_SIGS:
        raise DataError(f"{path}: time signature {sig[0]}/{sig[1]} is not supported "
                        f"(supported: {', '.join(f'{a}/{b}' for a, b in TIME_SIGS)})")
    return sig


def _midi_tempo(pm: Any) -> float:
    _, tempi = pm.get_tempo_changes()
    return round(float(tempi[0]), 2) if len(tempi) else 120.0


def to_pretty_midi(piece: Piece, programs: Mapping[str, int] | None = None) -> Any:
    """A ``pretty_midi.PrettyMIDI`` of ``piece``: one track per voice, its key and metre."""
    import pretty_midi

    program = (programs or PROGRAMS).get(piece.style, 0)
    pm = pretty_midi.PrettyMIDI(initial_tempo=piece.tempo)
    sec = 60.0 / (piece.tempo * TPQ)  # seconds per tick
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*piece.time_signature, 0.0))
    pm.key_signature_changes.append(
        pretty_midi.KeySignature(piece.key.tonic + 12 * piece.key.minor, 0.0))
    voices = sorted({n.voice for n in piece.notes})
    for voice in voices:
        inst = pretty_midi.Instrument(program=program, name=f"voice {voice}")
        for n in piece.notes:
            if n.voice == voice:
                inst.notes.append(pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch),
                                                   start=n.start * sec,
                                                   end=(n.start + n.duration) * sec))
        pm.instruments.append(inst)
    return pm


def write_midi(piece: Piece, path: Path, metadata: Mapping[str, Any] | None = None, *,
               provenance: bool | None = None) -> Path:
    """Write ``piece`` as a standard MIDI file (atomically).

    With provenance on (the default; ``provenance=False`` or ``$MUSELAB_PROVENANCE=0``
    turns it off) the file carries an AI label as a MIDI text meta event and gets an
    Ed25519-signed sidecar ``<file>.provenance.json`` recording ``metadata``.
    """
    from muselab.provenance import apply

    if not piece.notes:
        raise MuselabError(f"refusing to write {path}: the piece has no notes")
    pm = to_pretty_midi(piece)
    if not apply.enabled(provenance):
        atomic_write(path, lambda tmp: pm.write(tmp))
        return path
    meta = {"key": str(piece.key), "tempo": piece.tempo, "style": piece.style,
            **(metadata or {})}
    records: list[dict[str, Any]] = []

    def write(tmp: str) -> None:
        pm.write(tmp)
        records.append(apply.midi_labelled(tmp, meta))

    atomic_write(path, write)
    from muselab.provenance.manifest import write_sidecar

    write_sidecar(path, records[0])
    return path


def render_wav(midi_path: Path, wav_path: Path, sample_rate: int = 22050,
               gain: float = 0.8, metadata: Mapping[str, Any] | None = None, *,
               provenance: bool | None = None) -> str | None:
    """Render ``midi_path`` to ``wav_path`` with fluidsynth; ``None`` on success, else why not.

    With provenance on (the default) the WAV carries a RIFF INFO label and a C2PA
    manifest (an Ed25519 sidecar when ``c2pa-python`` is missing) naming the MIDI
    file's hash as its parent.
    """
    from muselab.provenance import apply, manifest

    binary = shutil.which("fluidsynth")
    if binary is None:
        return ("fluidsynth is not installed, so no WAV was written (the MIDI file was); "
                "install it with `apt-get install fluidsynth` or `brew install fluid-synth`")
    sf2 = soundfont_path()
    on = apply.enabled(provenance)
    meta = {"midi": _sha256_of(midi_path), "sample_rate": sample_rate, "gain": gain,
            **(metadata or {})} if on else {}
    records: list[dict[str, Any]] = []  # the provenance record, once written

    def run(tmp: str) -> None:
        cmd = [binary, "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-T", "wav",
               "-F", tmp, str(sf2), str(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0 or Path(tmp).stat().st_size <= 44:
            raise MuselabError(f"fluidsynth failed on {midi_path}: "
                               f"{(proc.stderr or proc.stdout).strip()[:300]}")
        if on:
            records.append(apply.wav_labelled(tmp, meta, wav_path.name))

    atomic_write(wav_path, run)
    if records and not manifest.c2pa_available():  # no C2PA: sign the file in a sidecar
        apply.sign_file(wav_path, "audio", int(records[0]["work_id"], 16), meta)
    return None


def _sha256_of(path: Path) -> str:
    from muselab.io import sha256_file

    return f"sha256:{sha256_file(path)}"


def piano_roll(piece: Piece, px_tick: int = 6, px_pitch: int = 6) -> np.ndarray:
    """uint8 [H, W, 3] piano roll: voices in colour, bar lines grey, high pitches on top."""
    if not piece.notes:
        raise MuselabError("the piece has no notes to draw")
    lo = min(n.pitch for n in piece.notes) - 2
    hi = max(n.pitch for n in piece.notes) + 2
    bt = piece.bar_ticks
    width = max(piece.bars() * bt, max(n.start + n.duration for n in piece.notes))
    img = np.full(((hi - lo + 1) * px_pitch, width * px_tick, 3), 255, np.uint8)
    for t in range(0, width, TPQ):  # beat lines light, bar lines darker
        img[:, t * px_tick] = 170 if t % bt == 0 else 230
    for n in piece.notes:
        y = (hi - n.pitch) * px_pitch
        x0, x1 = n.start * px_tick, (n.start + n.duration) * px_tick
        img[y + 1 : y + px_pitch, x0 + 1 : x1] = VOICE_COLOURS[n.voice % len(VOICE_COLOURS)]
        img[y + 1 : y + px_pitch, x0] = 0  # onset mark
    return img
