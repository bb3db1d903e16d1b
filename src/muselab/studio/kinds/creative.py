"""Job kinds ``stylize``, ``compose`` and ``poem``: the Stylize, Music and Poetry pages'
operations as queued jobs (the same functions the synchronous endpoints call)."""

from __future__ import annotations

from typing import Any

from muselab.studio.context import JobContext
from muselab.studio.music import ComposeIn, check, compose
from muselab.studio.poems import PoemIn, write
from muselab.studio.registry import register_job
from muselab.studio.stylize import StyleIn, stylizer


def _check_music(settings: Any, p: ComposeIn) -> str | None:
    check(settings, p)
    return None


def _check_style(settings: Any, p: StyleIn) -> str | None:
    """Both images exist (404 at submit time, not a failed job later)."""
    from muselab.store import gallery
    from muselab.store.db import connect

    conn = connect(settings.db_path())
    try:
        for item in (p.content, p.style):
            gallery.get_item(conn, item)
    finally:
        conn.close()
    return None


@register_job("stylize", StyleIn, description="Stylize a gallery image with another "
                                               "(arbitrary stylizer) into the gallery.",
              prepare=_check_style)
def stylize_job(ctx: JobContext, p: StyleIn) -> dict[str, Any]:
    ctx.progress(0, 1, f"stylizing #{p.content} with #{p.style}", force=True)
    item = stylizer(ctx.settings).keep(ctx.conn, p, job_id=ctx.job_id)
    ctx.progress(1, 1, "done", force=True)
    return {"items": [item]}


@register_job("compose", ComposeIn, description="Compose music (MIDI, WAV, piano roll) "
                                                "into the gallery.", prepare=_check_music)
def compose_job(ctx: JobContext, p: ComposeIn) -> dict[str, Any]:
    ctx.progress(0, 1, f"composing {p.bars} bars ({p.style}, {p.key}, seed {p.seed})",
                 force=True)
    item = compose(ctx.conn, ctx.settings, p, job_id=ctx.job_id)
    ctx.progress(1, 1, "done", force=True)
    return {"items": [item]}


@register_job("poem", PoemIn, description="Write poems into the gallery.")
def poem_job(ctx: JobContext, p: PoemIn) -> dict[str, Any]:
    ctx.progress(0, 1, f"writing {p.n} poem(s)", force=True)
    items = write(ctx.conn, ctx.settings, p, job_id=ctx.job_id)
    ctx.progress(1, 1, "done", force=True)
    return {"items": items}
