"""``/api/ratings``: 1-5 star feedback on gallery images, and which image to rate next."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from fastapi import APIRouter, Query

from muselab.store import gallery
from muselab.store.gallery import NotFoundError
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.schemas import ItemOut, RatingIn, RatingOut

router = APIRouter(prefix="/api/ratings", tags=["ratings"])


@router.post("", response_model=RatingOut, status_code=201)
def rate(body: RatingIn, conn: DbDep, settings: SettingsDep) -> RatingOut:
    """Record a rating; the image's mean and count afterwards. Still images also go to the
    ratings store that trains the value model (``muselab.store.ratings``), as rater "me"."""
    mean, n = gallery.rate(conn, body.item, body.value)
    item = gallery.get_item(conn, body.item)
    if item.kind == "image":
        _to_value_store(conn, settings.media_dir() / item.file, round(body.value))
    return RatingOut(item=body.item, rating=mean, n_ratings=n)


def _to_value_store(conn: sqlite3.Connection, path: Path, stars: int) -> None:
    try:
        from muselab.store.ratings import RatingStore
    except ImportError:  # the evaluation capability is not installed
        return
    RatingStore(conn).add(path, stars, rater="me")


@router.get("/next", response_model=ItemOut)
def next_to_rate(conn: DbDep, model: str | None = None,
                 seed: int = Query(0, ge=0, le=2**31 - 1)) -> ItemOut:
    """The unrated image the value model is least sure about (once a ``value`` job has
    scored the gallery); else a random one among the 200 newest unrated (seeded)."""
    if seed == 0:
        best = gallery.most_uncertain_unrated(conn, model)
        if best is not None:
            return ItemOut.of(gallery.get_item(conn, best))
    items, _ = gallery.list_items(conn, gallery.Query(kind="image", model=model, unrated=True,
                                                      limit=200))
    if not items:
        raise NotFoundError("nothing left to rate: generate images on the Create page first")
    return ItemOut.of(random.Random(seed).choice(items))
