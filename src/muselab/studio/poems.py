"""Poetry in the studio: classical Chinese verse (``muselab.poetry``, the shipped
``tang-poems`` model) with form, theme, acrostic, tone and rhyme constraints, or English
verse with an English model; each poem is a ``poem`` item in the gallery (a UTF-8 text
file, the text and settings in the row)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from muselab.io import atomic_open
from muselab.store.gallery import NewItem
from muselab.studio.music import NAME
from muselab.studio.outputs import new_file, store, weights_hash
from muselab.studio.settings import Settings

ZH_FORMS = ("jueju5", "jueju7", "lushi5", "lushi7")
EN_FORMS = ("couplets", "quatrain", "sonnet", "limerick", "haiku")
DEFAULT_MODELS = {"zh": "tang-poems", "en": "english-verse"}


class PoemIn(BaseModel):
    """The options of ``muselab poem``."""

    lang: Literal["zh", "en"] = "zh"
    form: str | None = Field(default=None, max_length=20, description=(
        f"zh: {', '.join(ZH_FORMS)} (default jueju5); en: {', '.join(EN_FORMS)}."))
    theme: str = Field(default="", max_length=40, description="A title or opening words.")
    theme_as: Literal["title", "opening", "both"] = "title"
    acrostic: str = Field(default="", max_length=8,
                          description="Characters that start each line (zh).")
    constrained: bool = Field(default=True,
                              description="Enforce the form (line lengths, punctuation).")
    rhyme: bool = True
    tones: bool = Field(default=False, description="Level/oblique tone pattern (zh).")
    n: int = Field(default=1, ge=1, le=8)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    temperature: float = Field(default=0.9, ge=0.1, le=2.0)
    model: str | None = Field(default=None, max_length=200, pattern=NAME, description=(
        "A shipped verse model or a run, by name (default by lang)."))


def model_spec(settings: Settings, p: PoemIn) -> str:
    """The model to load: the studio's models folder first, else the library's lookup."""
    name = p.model or DEFAULT_MODELS[p.lang]
    local = settings.models / name / "model.safetensors"
    return str(local) if local.is_file() else name


def write(conn: sqlite3.Connection, settings: Settings, p: PoemIn,
          job_id: int | None = None) -> list[int]:
    """Write ``p.n`` poems and store each; their gallery ids."""
    from muselab.poetry.poet import resolve_model_file
    from muselab.poetry.service import write_poems

    spec = model_spec(settings, p)
    poems = write_poems(lang=p.lang, form=p.form, theme=p.theme, theme_as=p.theme_as,
                        acrostic=p.acrostic, tones=p.tones, rhyme=p.rhyme,
                        constrained=p.constrained, seed=p.seed, n=p.n, model=spec,
                        temperature=p.temperature, device="cpu", runs_dir=settings.runs)
    path = Path(spec) if Path(spec).is_file() else resolve_model_file(spec, settings.runs)
    digest = weights_hash(path)
    media = settings.media_dir()
    ids = []
    for i, poem in enumerate(poems):
        rel = new_file("txt")
        text = poem.pretty()
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(media / rel, "wb") as fh:
            fh.write((text + "\n").encode("utf-8"))
        params = {"op": "poem", "text": text, "lang": poem.lang, "form": poem.form,
                  "index": i, "theme_as": p.theme_as, "acrostic": poem.acrostic,
                  "constrained": poem.constrained, **poem.settings}
        ids.append(store(conn, media, NewItem(
            kind="poem", file=rel, mime="text/plain; charset=utf-8", prompt=p.theme,
            params=params, seed=poem.seed, model=p.model or DEFAULT_MODELS[p.lang],
            weights_hash=digest, source="poetry", job_id=job_id)))
    return ids
