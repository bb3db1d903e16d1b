"""``/api/gallery``: every output with its file and provenance; filters, lineage, soft delete."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from muselab.store import gallery
from muselab.store.gallery import NotFoundError
from muselab.studio.deps import DbDep, EngineDep, SettingsDep
from muselab.studio.schemas import ItemDetailOut, ItemOut, ItemsOut, TagsIn

router = APIRouter(prefix="/api/gallery", tags=["gallery"])


@router.get("", response_model=ItemsOut)
def list_items(
    conn: DbDep,
    kind: str | None = None,
    model: str | None = None,
    source: str | None = None,
    tag: str | None = None,
    q: str | None = Query(None, max_length=200, description="Search prompt, model, tags."),
    min_rating: float | None = Query(None, ge=1, le=5),
    unrated: bool = False,
    sort: Literal["new", "old", "rating", "value"] = "new",
    limit: int = Query(60, ge=1, le=500),
    offset: int = Query(0, ge=0, le=2**62),  # SQLite integers are 64-bit
) -> ItemsOut:
    """A page of images, newest first unless ``sort`` says otherwise."""
    items, total = gallery.list_items(conn, gallery.Query(
        kind=kind, model=model, source=source, tag=tag, search=q, min_rating=min_rating,
        unrated=unrated, sort=sort, limit=limit, offset=offset))
    return ItemsOut(items=[ItemOut.of(i) for i in items], total=total)


@router.get("/facets")
def facets(conn: DbDep) -> dict[str, list[str]]:
    """Values for the filter menus: kinds, models, sources, tags."""
    return gallery.facets(conn)


@router.get("/provenance")
def provenance(conn: DbDep, settings: SettingsDep,
               ids: str = Query(..., max_length=2000, pattern=r"^\d+(,\d+)*$",
                                description="Comma-separated item ids (at most 200).")
               ) -> dict[str, dict[str, Any]]:
    """Provenance badge data per item: state (verified, tampered, watermarked, labelled,
    none, error), label, watermark id and signature, as ``muselab verify`` reports it."""
    wanted = [int(i) for i in ids.split(",")][:200]
    out: dict[str, dict[str, Any]] = {}
    for item_id in wanted:
        it = gallery.get_item(conn, item_id, include_deleted=True)
        out[str(item_id)] = _verdict(settings.media_dir() / it.file)
    return out


def _verdict(path: Path) -> dict[str, Any]:
    try:
        st = path.stat()
    except OSError:
        return {"state": "error", "notes": ["file missing"]}
    return dict(_cached_verdict(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=4096)
def _cached_verdict(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """``verify`` of one media file, cached per (path, mtime, size): files are immutable."""
    from muselab.errors import MuselabError
    from muselab.provenance.verify import verify

    try:
        v = verify(Path(path), search=False).as_dict()
    except MuselabError as exc:
        return {"state": "error", "notes": [str(exc)]}
    v.pop("file")
    return v


@router.get("/{item_id}", response_model=ItemDetailOut)
def item(item_id: int, conn: DbDep) -> ItemDetailOut:
    """One image with its lineage tree (ancestors) and children."""
    it = gallery.get_item(conn, item_id)
    base = ItemOut.of(it).model_dump()
    return ItemDetailOut(**base, lineage=gallery.lineage(conn, item_id),
                         children=gallery.children(conn, item_id))


@router.get("/{item_id}/file", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/gif": {}}}})
def item_file(item_id: int, conn: DbDep, settings: SettingsDep,
              download: bool = False) -> FileResponse:
    """The image file (``download=1``: as an attachment). Works for soft-deleted images
    too, so lineage trees keep their pictures."""
    it = gallery.get_item(conn, item_id, include_deleted=True)
    path = settings.media_dir() / it.file
    if not path.is_file():
        raise NotFoundError(f"the file of image {item_id} is missing from {path.parent}")
    ext = path.suffix
    name = f"muselab-{item_id}{ext}"
    return FileResponse(path, media_type=it.mime, filename=name if download else None,
                        headers={"Cache-Control": "max-age=31536000, immutable"})


@router.delete("/{item_id}", response_model=ItemOut)
def delete(item_id: int, conn: DbDep) -> ItemOut:
    """Soft delete: hidden from lists; the file and lineage stay (restore undoes it)."""
    gallery.soft_delete(conn, item_id)
    return ItemOut.of(gallery.get_item(conn, item_id, include_deleted=True))


@router.post("/{item_id}/restore", response_model=ItemOut)
def restore(item_id: int, conn: DbDep) -> ItemOut:
    gallery.soft_delete(conn, item_id, deleted=False)
    return ItemOut.of(gallery.get_item(conn, item_id))


@router.put("/{item_id}/tags", response_model=ItemOut)
def tags(item_id: int, body: TagsIn, conn: DbDep) -> ItemOut:
    gallery.set_tags(conn, item_id, body.tags)
    return ItemOut.of(gallery.get_item(conn, item_id))


@router.post("/{item_id}/more", response_model=ItemsOut)
def more_like_this(item_id: int, conn: DbDep, engine: EngineDep,
                   n: int = Query(8, ge=1, le=64),
                   strength: float = Query(0.3, ge=0, le=1),
                   seed: int = Query(0, ge=0, le=2**31 - 1)) -> ItemsOut:
    """"Make more like this": variations of the image."""
    ids = engine.variations(conn, item_id, n, strength, seed)
    return ItemsOut(items=[ItemOut.of(gallery.get_item(conn, i)) for i in ids], total=len(ids))
