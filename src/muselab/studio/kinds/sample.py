"""Job kind ``sample``: a batch of images from a model into the gallery."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from muselab.studio.context import JobContext
from muselab.studio.registry import register_job

CHUNK = 16


class SampleParams(BaseModel):
    model: str = Field(description="Model id (GET /api/models).")
    n: int = Field(default=64, ge=1, le=4096, description="How many images.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1,
                      description="First seed; image i uses seed + i.")


def _check(settings: Any, p: SampleParams) -> str | None:
    from muselab.studio.engine import find_model

    find_model(settings, p.model)
    return None


@register_job("sample", SampleParams, description="Sample a batch of images into the gallery.",
              prepare=_check)
def sample(ctx: JobContext, p: SampleParams) -> dict[str, Any]:
    from muselab.studio.engine import Engine

    engine = Engine(ctx.settings)
    done: list[int] = list(ctx.state.get("items", []))  # a restarted job keeps its images
    ctx.log(f"sampling {p.n} images from {p.model}, seeds {p.seed}..{p.seed + p.n - 1}")
    while len(done) < p.n:
        if ctx.progress(len(done), p.n, f"{len(done)}/{p.n} images"):
            break
        start = p.seed + len(done)
        seeds = list(range(start, min(p.seed + p.n, start + CHUNK)))
        done += engine.generate(ctx.conn, p.model, seeds, source="sample", job_id=ctx.job_id)
        ctx.save_state(items=done)
    ctx.progress(len(done), p.n, f"{len(done)}/{p.n} images", force=True)
    return {"items": done, "model": p.model}
