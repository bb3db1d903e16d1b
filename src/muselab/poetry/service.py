"""What the ``muselab poem`` and ``muselab eval poetry`` commands do, as library calls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from muselab.errors import ConfigError, DataError
from muselab.poetry.poet import Poem
from muselab.provenance.label import FOOTER_KEY

LANGS = ("zh", "en")


def write_poems(*, lang: str = "zh", form: str | None = None, theme: str = "",
                theme_as: str = "title", acrostic: str = "", tones: bool = False,
                rhyme: bool = True, constrained: bool = True, novel: bool = False,
                seed: int = 0, n: int = 1,
                model: str | None = None, temperature: float = 0.9, top_p: float = 0.95,
                device: str = "auto", runs_dir: Path | None = None) -> list[Poem]:
    """``n`` poems; every argument is checked before the model is loaded."""
    import torch

    from muselab.device import resolve_device

    if lang not in LANGS:
        raise ConfigError(f"--lang {lang!r}: choose zh or en")
    dev = resolve_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(1)  # one-token steps of a small model: threads only add overhead
    if lang == "zh":
        return _write_zh(form or "jueju5", theme, theme_as, acrostic, tones, rhyme, constrained,
                         novel, seed, n, model, temperature, top_p, str(dev), runs_dir)
    if acrostic or tones or novel:
        raise ConfigError("--acrostic, --tones and --novel are for Chinese verse (--lang zh)")
    from muselab.poetry.english import EnPoet, get_en_form

    en_form = get_en_form(form or "couplets")
    poet = EnPoet.load(model, str(dev), runs_dir)
    return poet.write(en_form.name, n=n, seed=seed, theme=theme, rhyme=rhyme,
                      constrained=constrained, temperature=temperature, top_p=top_p)


def _write_zh(form: str, theme: str, theme_as: str, acrostic: str, tones: bool, rhyme: bool,
              constrained: bool, novel: bool, seed: int, n: int, model: str | None,
              temperature: float, top_p: float, device: str,
              runs_dir: Path | None) -> list[Poem]:
    from muselab.poetry.constraints import ZhSpec
    from muselab.poetry.poet import THEME_MODES, ZhPoet
    from muselab.poetry.prosody import get_form

    f = get_form(form)  # fail on a bad form, acrostic or theme before loading the model
    if theme_as not in THEME_MODES:
        raise ConfigError(f"--theme-as {theme_as!r}: choose one of {', '.join(THEME_MODES)}")
    ZhSpec(f, acrostic=acrostic, opening=theme if theme_as != "title" else "")
    poet = ZhPoet.load(model, device, runs_dir)
    return poet.write(f.name, n=n, seed=seed, theme=theme, theme_as=theme_as, acrostic=acrostic,
                      rhyme=rhyme, tones=tones, constrained=constrained, novel=novel,
                      temperature=temperature, top_p=top_p)


def save_poems(poems: Sequence[Poem], path: Path, *, provenance: bool | None = None) -> None:
    """Poems as JSON lines (text, seed, model, settings), written atomically.

    With provenance on (the default; ``provenance=False`` or ``$MUSELAB_PROVENANCE=0``
    turns it off) a last JSON line carries the AI label (:func:`read_poems_file` skips
    it) and an Ed25519-signed sidecar ``<file>.provenance.json`` records how they were made.
    """
    from muselab.io import atomic_open
    from muselab.provenance import apply

    body = "".join(json.dumps(p.record(), ensure_ascii=False) + "\n" for p in poems)
    meta = {"poems": len(poems), "model": poems[0].model if poems else None,
            "seed": [p.seed for p in poems], "lang": sorted({p.lang for p in poems}),
            "form": sorted({p.form for p in poems})}
    on = apply.enabled(provenance)
    wid, footer = apply.text_record(body, meta) if on else (0, "")
    with atomic_open(path, "w") as fh:
        fh.write(body + (footer + "\n" if on else ""))
    if on:
        apply.sign_file(path, "text", wid, meta)


def read_poems_file(path: Path) -> list[dict[str, Any]]:
    """Poems of a ``.jsonl`` (records with ``text``) or of a text file (blank-line separated)."""
    try:
        raw = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read poems file {path}: {exc}") from exc
    if path.suffix == ".jsonl":
        records = []
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{i}: not a JSON line ({exc})") from exc
            if isinstance(rec, dict) and FOOTER_KEY in rec:
                continue  # the provenance label line of save_poems
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise DataError(f"{path}:{i}: a poem record needs a \"text\" string")
            records.append(rec)
    else:
        records = [{"text": block.strip()} for block in raw.split("\n\n") if block.strip()]
    if not records:
        raise DataError(f"{path} holds no poems")
    return records


def evaluate_file(path: Path, *, lang: str = "auto", form: str | None = None,
                  copies: bool = True) -> dict[str, Any]:
    """Scores of the poems in ``path`` (see :mod:`muselab.poetry.metrics`)."""
    from muselab.poetry.metrics import looks_chinese, score_zh

    records = read_poems_file(path)
    texts = [r["text"] for r in records]
    if lang == "auto":
        lang = "zh" if looks_chinese("".join(texts)) else "en"
    if lang == "zh":
        from muselab.poetry.prosody import get_form
        from muselab.poetry.tang import tang_corpus

        name = get_form(form).name if form else None
        lines = tang_corpus().line_set() if copies else None
        scores = score_zh(texts, lines, name).as_dict()
    else:
        from muselab.poetry.english import score_en

        forms = [form or r.get("form") or "couplets" for r in records]
        scores = score_en(texts, forms, copies=copies).as_dict()
    return {"file": str(path), "lang": lang, "poems": len(texts), "scores": scores}
