"""Cross-modal works in the studio: the ``/crossmodal`` page and ``/api/crossmodal``.

The work itself runs as jobs (``music2video``, ``image2music``, ``triptych``, ``inspire``:
``POST /api/jobs``, see :mod:`muselab.studio.kinds.crossmodal`); this router shows a
finished work with every part linked to it (its parents and children in the gallery).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from muselab.errors import DataError
from muselab.store import gallery
from muselab.store.gallery import NewItem
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.outputs import new_file, store
from muselab.studio.schemas import ItemOut
from muselab.studio.settings import Settings
from muselab.studio.uploads import UploadError, copy_limited

router = APIRouter(tags=["crossmodal"])

PAGE = ("crossmodal", "Cross-modal", "crossmodal.html", True)
#: Job kinds the page offers.
KINDS = ("music2video", "image2music", "triptych", "inspire")


class PartOut(ItemOut):
    audio_url: str | None = Field(default=None, description="WAV of a piece, if any.")
    midi_url: str | None = None


class WorkOut(BaseModel):
    """A cross-modal work and the works it is linked to."""

    item: PartOut
    parents: list[PartOut] = Field(description="What it was made from (or its parts).")
    children: list[PartOut] = Field(description="What was made from it (or its bundle).")


def part(item: gallery.Item) -> PartOut:
    base = ItemOut.of(item).model_dump()
    music = item.kind == "music"
    return PartOut(**base,
                   audio_url=f"/api/music/{item.id}/audio" if music and item.params.get("wav")
                   else None,
                   midi_url=f"/api/music/{item.id}/midi" if music and item.params.get("midi")
                   else None)


@router.get("/api/crossmodal/works/{item_id}", response_model=WorkOut)
def work(item_id: int, conn: DbDep) -> WorkOut:
    """The item with its linked parts: a triptych with its poem, image and music; a video
    with its piece; a piece with its image; a mood board with its works."""
    item = gallery.get_item(conn, item_id)
    parents = [gallery.get_item(conn, p, include_deleted=True) for p in item.parents]
    children = [gallery.get_item(conn, c) for c in gallery.children(conn, item_id)]
    return WorkOut(item=part(item), parents=[part(p) for p in parents],
                   children=[part(c) for c in children])


@router.post("/api/crossmodal/pieces", response_model=PartOut, status_code=201)
def upload_piece(file: UploadFile, conn: DbDep, settings: SettingsDep) -> PartOut:
    """Upload a MIDI or WAV file as a piece (a ``music`` item) for ``music2video``.

    It is analysed at once: a silent, empty or unreadable file is refused (415)."""
    item_id = store_piece(conn, settings, file.file, file.filename or "upload")
    return part(gallery.get_item(conn, item_id))


def store_piece(conn: sqlite3.Connection, settings: Settings, src: Any, filename: str) -> int:
    """An uploaded MIDI/WAV as a ``music`` item: its picture is the piano roll (MIDI) or the
    loudness/pitch/onset picture (WAV); the audio file is kept as the item's MIDI or WAV."""
    from muselab.crossmodal.audio import AUDIO_SUFFIXES, MIDI_SUFFIXES, analyse, envelope_image
    from muselab.image.io import save_png
    from muselab.music.midi import piano_roll, read_midi

    suffix = Path(filename).suffix.lower()
    if suffix not in (*AUDIO_SUFFIXES, *MIDI_SUFFIXES):
        raise UploadError(f"{filename}: upload a MIDI (.mid) or WAV (.wav) file", 415)
    media = settings.media_dir()
    audio_rel = new_file(suffix.lstrip(".").replace("midi", "mid"))
    audio = media / audio_rel
    audio.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_limited(src, audio, settings.max_upload_bytes, filename)
        feats = analyse(audio, 12.0)
        picture = (piano_roll(read_midi(audio)) if feats.kind == "midi"
                   else envelope_image(feats))
    except DataError as exc:
        audio.unlink(missing_ok=True)
        raise UploadError(f"{filename}: {str(exc).replace(str(audio), 'the file')}", 415) from None
    except BaseException:
        audio.unlink(missing_ok=True)
        raise
    rel = new_file("png")
    name = Path(filename).name[:200]
    save_png(media / rel, picture, {"op": "upload", "filename": name, **feats.summary()},
             provenance=False)  # a user's upload is not AI-made: no label
    key = "midi" if feats.kind == "midi" else "wav"
    return store(conn, media, NewItem(
        kind="music", file=rel, prompt=name, source="upload",
        params={"op": "upload", "filename": name, key: audio_rel, "key": str(feats.key),
                "tempo": round(feats.tempo, 2), "duration": round(feats.duration, 3)}),
        extra_files=[audio_rel])


@router.get("/crossmodal", response_class=HTMLResponse, include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    from muselab.studio.routers.pages import PAGES, templates

    pages: list[Any] = list(PAGES)
    if PAGE[0] not in [p[0] for p in pages]:
        pages.append(PAGE)
    return templates.TemplateResponse(request, "crossmodal.html",
                                      {"page": PAGE[0], "title": PAGE[1], "pages": pages,
                                       "kinds": KINDS})
