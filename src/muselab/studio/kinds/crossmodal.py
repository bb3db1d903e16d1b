"""Cross-modal job kinds: ``music2video``, ``image2music``, ``triptych`` and ``inspire``.

Each reads its inputs from the gallery and stores every output there with its lineage,
so the parts of a cross-modal work stay linked: a video's parent is its piece, a piece
composed from an image has the image as parent, a triptych bundle (the zip) has its poem,
image and music as parents, and a mood board, variations, surprises and remixes have the
works they came from as parents.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from muselab.errors import ConfigError
from muselab.store import gallery
from muselab.store.gallery import NewItem
from muselab.studio.context import JobContext
from muselab.studio.music import NAME
from muselab.studio.outputs import new_file, store
from muselab.studio.registry import register_job
from muselab.studio.settings import Settings

# --------------------------------------------------------------------------- parameters


class Music2VideoIn(BaseModel):
    """``muselab music2video`` on a piece from the gallery."""

    piece: int = Field(ge=1, description="Gallery id of a piece of music (its WAV or MIDI).")
    model: str = Field(default="emoji-vae32", max_length=200, pattern=NAME,
                       description="Image model (a VAE or GAN; a name, not a path).")
    fps: float = Field(default=12.0, ge=1.0, le=30.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    size: int = Field(default=256, ge=32, le=512, multiple_of=16)


class Image2MusicIn(BaseModel):
    """``muselab image2music`` on an image from the gallery."""

    image: int = Field(ge=1, description="Gallery id of an image.")
    bars: int = Field(default=8, ge=1, le=32)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    model: str = Field(default="bach-chorale", max_length=200, pattern=NAME)


class TriptychIn(BaseModel):
    """``muselab triptych``: a poem, an image and music from one theme."""

    theme: str = Field(min_length=1, max_length=120, description='e.g. "autumn rain at night"')
    lang: Literal["zh", "en"] = "en"
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    image_model: str = Field(default="emoji-text32", max_length=200, pattern=NAME)
    bars: int = Field(default=8, ge=1, le=32)


class InspireIn(BaseModel):
    """``muselab inspire`` on images from the gallery."""

    items: list[int] = Field(min_length=1, max_length=16, description="Gallery image ids.")
    variations: int = Field(default=2, ge=0, le=8)
    surprise: int = Field(default=4, ge=0, le=16)
    remix: bool = True
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    model: str = Field(default="emoji-vae32", max_length=200, pattern=NAME)


# --------------------------------------------------------------------------- checks


def _items(settings: Settings, ids: list[int], kind: str, what: str) -> list[gallery.Item]:
    """The gallery items ``ids``, each of ``kind`` (404 / 400 at submit time)."""
    from muselab.store.db import connect

    conn = connect(settings.db_path())
    try:
        items = [gallery.get_item(conn, i) for i in ids]
    finally:
        conn.close()
    for it in items:
        if it.kind != kind:
            raise ConfigError(f"{what}: gallery item {it.id} is a {it.kind}, not a {kind}")
    return items


def _check_piece(settings: Settings, p: Music2VideoIn) -> str | None:
    (item,) = _items(settings, [p.piece], "music", "piece")
    if not (item.params.get("wav") or item.params.get("midi")):
        raise ConfigError(f"piece: gallery item {item.id} has neither a WAV nor a MIDI file")
    return None


def _check_image(settings: Settings, p: Image2MusicIn) -> str | None:
    _items(settings, [p.image], "image", "image")
    return None


def _check_works(settings: Settings, p: InspireIn) -> str | None:
    _items(settings, p.items, "image", "items")
    return None


def _check_theme(settings: Settings, p: TriptychIn) -> str | None:
    if not p.theme.strip():
        raise ConfigError("theme: give a few words, e.g. 'autumn rain at night'")
    return None


# --------------------------------------------------------------------------- helpers


def _media_path(settings: Settings, rel: str) -> Path:
    path = settings.media_dir() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _rel(settings: Settings, path: str | Path) -> str:
    return str(Path(path).resolve().relative_to(settings.media_dir().resolve()))


def _image_pipe(settings: Settings, model: str) -> Any:
    from muselab.models.zoo import load_pipeline

    return load_pipeline(model, device="cpu", runs_dir=settings.runs)


def _read_rgb(settings: Settings, item: gallery.Item) -> np.ndarray:
    from PIL import Image

    with Image.open(settings.media_dir() / item.file) as im:
        return np.asarray(im.convert("RGB"))


def store_music(conn: sqlite3.Connection, settings: Settings, files: dict[str, str],
                meta: dict[str, Any], *, seed: int, model: str, source: str,
                parents: list[int], job_id: int | None, prompt: str = "") -> int:
    """A composed piece (files of :func:`muselab.music.compose.write_piece`) as a ``music``
    item: the piano roll is its file, MIDI and WAV are in its params (as the Music page's)."""
    rel = {k: _rel(settings, v) for k, v in files.items() if k in ("midi", "png", "wav")}
    params = {"op": source, "midi": rel.get("midi"), "wav": rel.get("wav"),
              "wav_note": files.get("wav_note"), "key": meta["conditions"]["key"],
              "tempo": meta["conditions"]["tempo"], "bars": meta.get("bars"),
              "conditions": meta["conditions"]}
    return store(conn, settings.media_dir(), NewItem(
        kind="music", file=rel["png"], params=params, seed=seed, model=model,
        source=source, job_id=job_id, parents=parents, prompt=prompt),
        extra_files=[v for k, v in rel.items() if k != "png"])


# --------------------------------------------------------------------------- the jobs


@register_job("music2video", Music2VideoIn, description="Music -> video: a gallery piece "
              "steers a latent walk, rendered as an MP4 with the audio.", prepare=_check_piece)
def music2video_job(ctx: JobContext, p: Music2VideoIn) -> dict[str, Any]:
    from muselab.crossmodal.music2video import WalkConfig, music_to_video

    (piece,) = _items(ctx.settings, [p.piece], "music", "piece")
    audio = settings_file(ctx.settings, piece)
    ctx.progress(0, 2, f"loading {p.model}", force=True)
    pipe = _image_pipe(ctx.settings, p.model)
    ctx.progress(1, 2, f"rendering {audio.name} at {p.fps:g} fps", force=True)
    out = _media_path(ctx.settings, new_file("mp4"))
    res = music_to_video(audio, out, fps=p.fps, seed=p.seed, cfg=WalkConfig(size=p.size),
                         pipe=pipe, progress=False)
    main = res.files.get("video") or res.files["gif"]
    extra = [_rel(ctx.settings, f) for k, f in res.files.items() if f != main]
    extra.append(_rel(ctx.settings, out.with_suffix(".json")))
    item = store(ctx.conn, ctx.settings.media_dir(), NewItem(
        kind="video", file=_rel(ctx.settings, main),
        mime="video/mp4" if main.endswith(".mp4") else "image/gif",
        params={"op": "music2video", **p.model_dump(), "frames": res.frames,
                "duration": res.duration, "audio": res.record["audio"]},
        seed=p.seed, model=p.model, source="music2video", job_id=ctx.job_id,
        parents=[piece.id], prompt=piece.prompt), extra_files=extra)
    ctx.progress(2, 2, "done", force=True)
    return {"items": [item]}


def settings_file(settings: Settings, piece: gallery.Item) -> Path:
    """The audio of a gallery piece: its WAV when there is one, else its MIDI."""
    rel = piece.params.get("wav") or piece.params.get("midi")
    path = settings.media_dir() / str(rel)
    if not rel or not path.is_file():
        raise ConfigError(f"piece {piece.id}: its audio file is missing from {path.parent}")
    return path


@register_job("image2music", Image2MusicIn, description="Image -> music: a gallery image's "
              "colours steer the music Transformer.", prepare=_check_image)
def image2music_job(ctx: JobContext, p: Image2MusicIn) -> dict[str, Any]:
    from muselab.crossmodal.image2music import compose_from_conditions, conditions_from_image

    (image,) = _items(ctx.settings, [p.image], "image", "image")
    ctx.progress(0, 1, f"composing {p.bars} bars from image #{image.id}", force=True)
    cond = conditions_from_image(_read_rgb(ctx.settings, image))
    stem = _media_path(ctx.settings, new_file("png")).with_suffix("")
    res = compose_from_conditions(cond, bars=p.bars, seed=p.seed, out=stem, model=p.model)
    item = store_music(ctx.conn, ctx.settings, res["files"], res["meta"], seed=p.seed,
                       model=p.model, source="image2music", parents=[image.id],
                       job_id=ctx.job_id, prompt=f"from image #{image.id}")
    ctx.progress(1, 1, "done", force=True)
    return {"items": [item]}


@register_job("triptych", TriptychIn, description="Theme -> a poem, an image and music "
              "(one theme embedding), linked under one bundle.", prepare=_check_theme)
def triptych_job(ctx: JobContext, p: TriptychIn) -> dict[str, Any]:
    from muselab.crossmodal.triptych import make_triptych

    ctx.progress(0, 1, f"triptych of {p.theme!r}", force=True)
    folder = _media_path(ctx.settings, new_file("d")).with_suffix("")
    res = make_triptych(p.theme, folder, lang=p.lang, seed=p.seed, image_model=p.image_model,
                        bars=p.bars, device="cpu", runs_dir=ctx.settings.runs)
    poem_part, _, music_part = res.manifest["parts"]
    rel = _rel(ctx.settings, folder)

    def part(kind: str, file: str, mime: str, params: dict[str, Any], model: str,
             parents: tuple[int, ...] = (), tags: tuple[str, ...] = ()) -> int:
        return gallery.add_item(ctx.conn, NewItem(
            kind=kind, file=file, mime=mime, params={"op": "triptych", **params}, seed=p.seed,
            model=model, source="triptych", job_id=ctx.job_id, prompt=p.theme,
            parents=parents, tags=tags))

    poem = part("poem", f"{rel}/poem.txt", "text/plain; charset=utf-8",
                {"lang": p.lang, "text": (folder / "poem.txt").read_text("utf-8")},
                str(poem_part["model"]))
    image = part("image", f"{rel}/image.png", "image/png", {}, p.image_model)
    files = {key: str(folder / f"music.{ext}") for ext, key in
             (("mid", "midi"), ("png", "png"), ("wav", "wav"))
             if (folder / f"music.{ext}").is_file()}
    music = store_music(ctx.conn, ctx.settings, files, music_part["details"], seed=p.seed,
                        model=str(music_part["model"]), source="triptych", parents=[],
                        job_id=ctx.job_id, prompt=p.theme)
    bundle = part("triptych", _rel(ctx.settings, res.zip), "application/zip",
                  {"manifest": res.manifest, "poem": poem, "image": image, "music": music},
                  "triptych", parents=(poem, image, music), tags=("triptych",))
    ctx.progress(1, 1, "done", force=True)
    return {"items": [bundle, poem, image, music]}


@register_job("inspire", InspireIn, description="Inspire: palettes, composition, neighbours, "
              "variations, surprises and a mood board from gallery images.",
              prepare=_check_works)
def inspire_job(ctx: JobContext, p: InspireIn) -> dict[str, Any]:
    from muselab.crossmodal.inspire import InspireConfig, inspire

    works = _items(ctx.settings, p.items, "image", "items")
    cfg = InspireConfig(variations=p.variations, surprise=p.surprise,
                        candidates=max(48, p.surprise), remix=p.remix, model=p.model,
                        seed=p.seed)
    ctx.progress(0, 2, f"analysing {len(works)} work(s)", force=True)
    out = _media_path(ctx.settings, new_file("d")).with_suffix("")
    with tempfile.TemporaryDirectory(prefix="muselab-inspire-") as tmp:
        for i, w in enumerate(works):  # numbered names keep the gallery order
            shutil.copyfile(ctx.settings.media_dir() / w.file,
                            Path(tmp) / f"{i:03d}-{w.id}{Path(w.file).suffix}")
        res = inspire(Path(tmp), out, cfg, device="cpu", progress=False,
                      runs_dir=ctx.settings.runs)
    ids = [w.id for w in works]
    new = [NewItem(kind="image", file=_rel(ctx.settings, res.board), source="inspire",
                   params={"op": "moodboard", "works": res.report["works"],
                           "surprise": res.report["surprise"]},
                   seed=p.seed, model=p.model, job_id=ctx.job_id, parents=ids,
                   tags=["moodboard"])]
    for f in res.files["variations"]:
        work = ids[int(Path(f).stem.split("-")[1])]
        new.append(_generated(ctx, f, "variation", [work], p))
    for f, s in zip(res.files["surprise"], res.report["surprise"], strict=True):
        new.append(_generated(ctx, f, "surprise", ids, p, extra=s))
    for i, f in enumerate(res.files["remix"]):
        partner = ids[(i + 1) % len(ids)]
        new.append(_generated(ctx, f, "remix", sorted({ids[i], partner}), p))
    items = gallery.add_items(ctx.conn, new)
    ctx.progress(2, 2, "done", force=True)
    return {"items": items}


def _generated(ctx: JobContext, path: str, op: str, parents: list[int], p: InspireIn,
               extra: dict[str, Any] | None = None) -> NewItem:
    return NewItem(kind="image", file=_rel(ctx.settings, path), source="inspire",
                   params={"op": op, **(extra or {})}, seed=p.seed,
                   model="arbitrary-stylizer" if op == "remix" else p.model,
                   job_id=ctx.job_id, parents=parents, tags=[op])
