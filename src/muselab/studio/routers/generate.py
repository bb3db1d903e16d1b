"""``/api/generate``: interactive, seeded image operations (fast enough to answer at once).

Batches from seeds, variations of one image, breeding of selected parents, principal-
direction exploration and interpolation walks. Results go into the gallery with lineage.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from muselab.store import gallery
from muselab.studio.deps import DbDep, EngineDep
from muselab.studio.schemas import (
    BreedIn,
    ExploreIn,
    GenerateIn,
    InterpolateIn,
    ItemOut,
    ItemsOut,
    VariationsIn,
)

router = APIRouter(prefix="/api/generate", tags=["generate"])


def _items(conn: DbDep, ids: list[int]) -> ItemsOut:
    return ItemsOut(items=[ItemOut.of(gallery.get_item(conn, i)) for i in ids], total=len(ids))


@router.post("", response_model=ItemsOut)
def generate(body: GenerateIn, conn: DbDep, engine: EngineDep) -> ItemsOut:
    """A batch of images, one per seed (``seeds``, or ``n`` seeds from ``seed``)."""
    seeds = body.seeds if body.seeds else list(range(body.seed, body.seed + body.n))
    return _items(conn, engine.generate(conn, body.model, seeds, prompt=body.prompt))


@router.post("/variations", response_model=ItemsOut)
def variations(body: VariationsIn, conn: DbDep, engine: EngineDep) -> ItemsOut:
    """Children of one image; ``strength`` sets how far they stray."""
    return _items(conn, engine.variations(conn, body.item, body.n, body.strength, body.seed))


@router.post("/breed", response_model=ItemsOut)
def breed(body: BreedIn, conn: DbDep, engine: EngineDep) -> ItemsOut:
    """A generation of children of the selected parents (crossover + mutation)."""
    return _items(conn, engine.breed(conn, body.parents, body.n, body.strength, body.seed,
                                     body.crossover))


@router.post("/explore", response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
def explore(body: ExploreIn, conn: DbDep, engine: EngineDep) -> Response:
    """Preview (PNG) of a latent moved along principal directions; nothing is stored."""
    png, _ = engine.explore(conn, body.model, body.coeffs, body.seed, body.item)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/explore/keep", response_model=ItemOut)
def explore_keep(body: ExploreIn, conn: DbDep, engine: EngineDep) -> ItemOut:
    """Store the explored image in the gallery."""
    _, item_id = engine.explore(conn, body.model, body.coeffs, body.seed, body.item, keep=True)
    return ItemOut.of(gallery.get_item(conn, int(item_id or 0)))


@router.post("/interpolate", response_model=ItemOut)
def interpolate(body: InterpolateIn, conn: DbDep, engine: EngineDep) -> ItemOut:
    """A looping GIF walk through the images' latents, stored in the gallery."""
    return ItemOut.of(gallery.get_item(conn, engine.interpolate(conn, body.items, body.frames,
                                                                body.fps)))
