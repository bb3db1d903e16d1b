"""``/api/music``: compose a piece (MIDI, WAV, piano roll) into the gallery, and its files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import Field

from muselab.errors import ConfigError
from muselab.store import gallery
from muselab.store.gallery import NotFoundError
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.music import ComposeIn, compose
from muselab.studio.schemas import ItemOut

router = APIRouter(prefix="/api/music", tags=["music"])

#: The longest piece composed while the request waits (about 2 s on one busy core).
SYNC_MAX_BARS = 8


class MusicOut(ItemOut):
    audio_url: str | None = Field(description="The WAV (null when fluidsynth is missing).")
    midi_url: str | None


def music_out(item: gallery.Item) -> MusicOut:
    base = ItemOut.of(item).model_dump()
    wav, midi = item.params.get("wav"), item.params.get("midi")
    return MusicOut(**base, audio_url=f"/api/music/{item.id}/audio" if wav else None,
                    midi_url=f"/api/music/{item.id}/midi" if midi else None)


@router.post("/compose", response_model=MusicOut, status_code=201)
def compose_now(body: ComposeIn, conn: DbDep, settings: SettingsDep) -> MusicOut:
    """Compose at once (about 0.2 s a bar on one CPU core); pieces over 8 bars are refused
    here: run them as a `compose` job (`POST /api/jobs`), which shows progress."""
    if body.bars > SYNC_MAX_BARS:
        raise ConfigError(f"bars: {body.bars} bars take too long to wait for; up to "
                          f"{SYNC_MAX_BARS} compose at once, longer pieces run as a job: "
                          'POST /api/jobs {"kind": "compose", "params": {...}}')
    return music_out(gallery.get_item(conn, compose(conn, settings, body)))


@router.get("/{item_id}", response_model=MusicOut)
def piece(item_id: int, conn: DbDep) -> MusicOut:
    return music_out(_music(conn, item_id))


@router.get("/{item_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}}}})
def audio(item_id: int, conn: DbDep, settings: SettingsDep) -> Any:
    """The piece as a WAV."""
    return _file(settings, _music(conn, item_id), "wav", "audio/wav")


@router.get("/{item_id}/midi", response_class=FileResponse,
            responses={200: {"content": {"audio/midi": {}}}})
def midi(item_id: int, conn: DbDep, settings: SettingsDep) -> Any:
    """The piece as a standard MIDI file (a download)."""
    return _file(settings, _music(conn, item_id), "midi", "audio/midi", download=True)


def _music(conn: DbDep, item_id: int) -> gallery.Item:
    item = gallery.get_item(conn, item_id, include_deleted=True)
    if item.kind != "music":
        raise NotFoundError(f"gallery item {item_id} is a {item.kind}, not a piece of music")
    return item


def _file(settings: SettingsDep, item: gallery.Item, what: str, mime: str,
          download: bool = False) -> FileResponse:
    rel = item.params.get(what)
    if not rel:
        note = item.params.get("wav_note") or ""
        raise NotFoundError(f"piece {item.id} has no {what.upper()} file. {note}".strip())
    path = settings.media_dir() / str(rel)
    if not path.is_file():
        raise NotFoundError(f"the {what.upper()} of piece {item.id} is missing from "
                            f"{path.parent}")
    name = f"muselab-{item.id}{path.suffix}" if download else None
    return FileResponse(path, media_type=mime, filename=name)
