"""``/api/poetry``: write poems (form, theme, acrostic, constraints) into the gallery."""

from __future__ import annotations

from fastapi import APIRouter

from muselab.store import gallery
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.poems import EN_FORMS, ZH_FORMS, PoemIn, write
from muselab.studio.schemas import ItemOut, ItemsOut

router = APIRouter(prefix="/api/poetry", tags=["poetry"])


@router.get("/forms", response_model=dict[str, list[str]])
def forms() -> dict[str, list[str]]:
    """The verse forms per language."""
    return {"zh": list(ZH_FORMS), "en": list(EN_FORMS)}


@router.post("/write", response_model=ItemsOut, status_code=201)
def write_now(body: PoemIn, conn: DbDep, settings: SettingsDep) -> ItemsOut:
    """Write ``n`` poems at once (a fraction of a second each) and store them."""
    ids = write(conn, settings, body)
    return ItemsOut(items=[ItemOut.of(gallery.get_item(conn, i)) for i in ids], total=len(ids))
