"""Job kind ``value``: fit the value model on the studio's ratings and score the gallery.

Uses the evaluation capability (``muselab.evaluate.value.ValueModel`` on
``muselab.store.ratings.RatingStore``): every live still image gets a predicted score
(P(high) + P(medium)/2) and the entropy of its class probabilities, so the gallery can sort
by predicted value and the Rate page can ask about the image the model is least sure of
(uncertainty sampling, Lewis & Gale 1994).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from muselab.store import gallery
from muselab.studio.context import JobContext
from muselab.studio.registry import register_job

CHUNK = 128


class ValueParams(BaseModel):
    rater: str = Field(default="me", min_length=1, max_length=64)
    backbone: str = Field(default="auto", description="none, auto or a backbone name.")


@register_job("value", ValueParams, description="Fit the value model and score the gallery.")
def value(ctx: JobContext, p: ValueParams) -> dict[str, Any]:
    from PIL import Image

    from muselab.evaluate.active import entropy
    from muselab.evaluate.value import ValueConfig, ValueModel, default_model_dir
    from muselab.store.ratings import RatingStore

    store = RatingStore(ctx.conn)
    model = ValueModel(ValueConfig(backbone=p.backbone))
    ctx.progress(0, 1, "fitting the value model", force=True)
    report = model.fit(store, rater=p.rater)
    saved = model.save(default_model_dir(store, p.rater))
    ctx.log(f"fitted on the ratings of {p.rater!r}; saved {saved}")
    ids = [r[0] for r in ctx.conn.execute(
        "SELECT id FROM items WHERE deleted=0 AND kind='image' ORDER BY id")]
    media = ctx.settings.media_dir()
    for start in range(0, len(ids), CHUNK):
        if ctx.progress(start, len(ids), f"scored {start}/{len(ids)} images"):
            break
        chunk = ids[start : start + CHUNK]
        files = [gallery.get_item(ctx.conn, i, include_deleted=True).file for i in chunk]
        images = [np.asarray(Image.open(media / f).convert("RGB")) for f in files]
        pred = model.predict(images)
        gallery.set_values(ctx.conn, list(zip(chunk, pred.score, entropy(pred.probs),
                                              strict=True)))
    ctx.progress(len(ids), len(ids), f"scored {len(ids)} images", force=True)
    return {"scored": len(ids), "model": str(saved),
            "report": report.summary() if hasattr(report, "summary") else str(report)}
