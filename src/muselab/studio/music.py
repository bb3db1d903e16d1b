"""Music in the studio: compose with a music language model (``muselab.music``, default the
shipped ``bach-chorale``) to MIDI, a WAV (fluidsynth) and a piano-roll PNG, stored in the
gallery as one ``music`` item whose file is the piano roll."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from muselab.store.gallery import NewItem
from muselab.studio.outputs import new_file, store, weights_hash
from muselab.studio.settings import Settings

#: A model is named, never given as a path (the API must not load arbitrary files).
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ComposeIn(BaseModel):
    """The options of ``muselab compose``."""

    style: Literal["bach", "folk"] = Field(default="bach",
                                           description="bach: four-voice chorale; folk: a tune.")
    bars: int = Field(default=8, ge=1, le=64)
    key: str = Field(default="C major", max_length=20, description='e.g. "G major", "D minor".')
    meter: str = Field(default="4/4", max_length=8, description="Time signature, e.g. 3/4.")
    tempo: float = Field(default=90.0, ge=30.0, le=240.0, description="Beats per minute.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    temperature: float = Field(default=1.0, ge=0.1, le=2.0)
    top_p: float = Field(default=0.95, ge=0.05, le=1.0,
                         description="Nucleus sampling (Holtzman et al. 2020).")
    cadence: bool = Field(default=True, description="End on the key's tonic chord, held "
                                                    "through the last bar.")
    model: str = Field(default="bach-chorale", max_length=200, pattern=NAME,
                       description="A shipped music model or a run (a name, not a path).")


_COMPOSERS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def model_path(settings: Settings, spec: str) -> Path:
    """The weights of music model ``spec`` (the studio's models folder first)."""
    from muselab.music.compose import resolve_music_model

    local = settings.models / spec / "model.safetensors"
    if local.is_file():
        return local
    return resolve_music_model(spec)


def check(settings: Settings, p: ComposeIn) -> None:
    """Key, meter and model are usable (a ConfigError/MuselabError naming the field)."""
    from muselab.music.compose import parse_meter
    from muselab.music.tokens import parse_key

    parse_key(p.key)
    parse_meter(p.meter)
    model_path(settings, p.model)


def composer(settings: Settings, spec: str) -> Any:
    """The loaded composer (cached per weights file and modification time)."""
    from muselab.music.compose import Composer

    path = model_path(settings, spec)
    key = (str(path), path.stat().st_mtime_ns)
    with _LOCK:
        if key not in _COMPOSERS:
            _COMPOSERS.clear()  # one music model in memory at a time
            _COMPOSERS[key] = Composer.load(str(path), device="cpu")
        return _COMPOSERS[key]


def compose(conn: sqlite3.Connection, settings: Settings, p: ComposeIn,
            job_id: int | None = None) -> int:
    """Compose one piece and store it; the gallery id."""
    from muselab.music.compose import Sampling, parse_meter, write_piece
    from muselab.music.tokens import parse_key

    key, meter = parse_key(p.key), parse_meter(p.meter)
    c = composer(settings, p.model)
    piece = c.compose(style=p.style, bars=p.bars, key=key, time_signature=meter,
                      tempo=p.tempo, seed=p.seed, cadence=p.cadence,
                      sampling=Sampling(temperature=p.temperature, top_p=p.top_p))[0]
    media = settings.media_dir()
    stem_rel = new_file("png")[: -len(".png")]
    stem = media / stem_rel
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"op": "compose", **p.model_dump(), "model_file": c.source}
    written = write_piece(piece, stem, meta)
    files = {ext: f"{stem_rel}.{ext}" for ext in ("mid", "json", "wav")
             if stem.with_suffix(f".{ext}").is_file()}
    params = {"op": "compose", **p.model_dump(exclude={"model"}), "notes": len(piece.notes),
              "midi": files.get("mid"), "wav": files.get("wav"),
              "wav_note": written.get("wav_note")}
    return store(conn, media, NewItem(
        kind="music", file=f"{stem_rel}.png", params=params, seed=p.seed, model=p.model,
        weights_hash=weights_hash(Path(c.source)), source="music", job_id=job_id,
        prompt=f"{p.style} {p.key} {p.meter}"), extra_files=list(files.values()))
