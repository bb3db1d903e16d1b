"""``/api/style``: stylize a content image with a style image (arbitrary stylizer).

Upload images (or pick any gallery image), preview at small size at once, keep the
full-size result in the gallery with the content and style as its parents."""

from __future__ import annotations

from fastapi import APIRouter, Response, UploadFile

from muselab.store import gallery
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.schemas import ItemOut
from muselab.studio.stylize import StyleIn, StylePreviewIn, store_upload, stylizer
from muselab.studio.uploads import UploadError

router = APIRouter(prefix="/api/style", tags=["style"])


@router.post("/uploads", response_model=ItemOut, status_code=201)
def upload(file: UploadFile, conn: DbDep, settings: SettingsDep) -> ItemOut:
    """Store an uploaded image (content or style) in the gallery (415 if not an image)."""
    if not file.filename:
        raise UploadError("the upload has no file name", 400)
    item_id = store_upload(conn, settings, file.file, file.filename)
    return ItemOut.of(gallery.get_item(conn, item_id))


@router.post("/preview", response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
def preview(body: StylePreviewIn, conn: DbDep, settings: SettingsDep) -> Response:
    """A small PNG of the stylized content (long side ``max_side``, default 256); not stored."""
    png = stylizer(settings).preview(conn, body)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/keep", response_model=ItemOut, status_code=201)
def keep(body: StyleIn, conn: DbDep, settings: SettingsDep) -> ItemOut:
    """Stylize at full size (long side ``max_side``) and store it with its provenance."""
    return ItemOut.of(gallery.get_item(conn, stylizer(settings).keep(conn, body)))
