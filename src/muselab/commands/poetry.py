"""``muselab`` commands: poetry (``muselab poem``, ``muselab eval poetry``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muselab.commands import err, eval_app, out, user_errors
from muselab.errors import ConfigError

ZH_FORMS = ("jueju5", "jueju7", "lushi5", "lushi7", "wujue", "qijue", "wulu", "qilu")
EN_FORMS = ("couplets", "quatrain", "sonnet", "limerick", "haiku")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("poem")(user_errors(poem))


def poem(
    lang: Annotated[str, typer.Option(help="zh (classical Chinese) or en (English).")] = "zh",
    form: Annotated[str | None, typer.Option(
        help="zh: jueju5, jueju7, lushi5, lushi7 (or wujue, qijue, wulu, qilu); "
             "en: couplets, quatrain, sonnet, limerick, haiku.")] = None,
    theme: Annotated[str, typer.Option(help="Theme word or phrase.")] = "",
    theme_as: Annotated[str, typer.Option(
        help="zh: use the theme as the title (conditioning), the opening, or both.")] = "title",
    acrostic: Annotated[str, typer.Option(help="zh: 藏头诗, one character per line.")] = "",
    tones: Annotated[bool, typer.Option(help="zh: enforce the level/oblique pattern.")] = False,
    rhyme: Annotated[bool, typer.Option(help="Enforce the rhyme.")] = True,
    constraints: Annotated[bool, typer.Option(
        help="Constrained decoding (off: the model's own form, for comparison).")] = True,
    novel: Annotated[bool, typer.Option(
        help="zh: never complete a line of the Tang corpus (builds it in the data home).")]
        = False,
    seed: Annotated[int, typer.Option(help="Seed of the first poem (poem i uses seed + i).")] = 0,
    n: Annotated[int, typer.Option(help="Number of poems.", min=1, max=10_000)] = 1,
    model: Annotated[str | None, typer.Option(
        help="Shipped model name, model file, run directory or run number "
             "(default: tang-poems / english-verse).")] = None,
    temperature: Annotated[float, typer.Option(min=0.0, max=5.0)] = 0.9,
    top_p: Annotated[float, typer.Option(min=0.01, max=1.0)] = 0.95,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Also write the poems (with seed, model, settings) to this .jsonl.")]
        = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are (default ./runs).")]
        = None,
) -> None:
    """Write poems: Tang-style verse with forms, rhyme, tones and acrostics, or English verse."""
    from muselab.poetry.service import write_poems

    poems = write_poems(lang=lang, form=form, theme=theme, theme_as=theme_as, acrostic=acrostic,
                        tones=tones, rhyme=rhyme, constrained=constraints, novel=novel,
                        seed=seed, n=n,
                        model=model, temperature=temperature, top_p=top_p, device=device,
                        runs_dir=runs_dir)
    for i, p in enumerate(poems):
        if i:
            out.print()
        out.print(p.pretty(), highlight=False, markup=False)
    if out_file is not None:
        from muselab.poetry.service import save_poems

        save_poems(poems, out_file)
        err.print(f"wrote {len(poems)} poems to {out_file}")


@eval_app.command("poetry")
@user_errors
def eval_poetry(
    file: Annotated[Path, typer.Argument(help="Poems: a .jsonl from `muselab poem --out`, or "
                                              "text with poems separated by blank lines.")],
    lang: Annotated[str, typer.Option(help="auto, zh or en.")] = "auto",
    form: Annotated[str | None, typer.Option(help="Also require this form.")] = None,
    copies: Annotated[bool, typer.Option(
        help="Count lines copied verbatim from the training corpus (builds its index).")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write results here.")]
        = None,
) -> None:
    """Form validity, rhyme, tone pattern, distinct-n and copied-line rate of poems."""
    from muselab.io import write_json
    from muselab.poetry.service import evaluate_file

    if lang not in ("auto", "zh", "en"):
        raise ConfigError(f"--lang {lang!r}: choose auto, zh or en")
    result = evaluate_file(file, lang=lang, form=form, copies=copies)
    _print_scores(result)
    if json_out is not None:
        write_json(json_out, result)


def _print_scores(result: dict[str, Any]) -> None:
    from rich.table import Table

    out.print(f"{result['file']} ({result['lang']}, {result['poems']} poems)", highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result["scores"].items():
        text = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float)
                                             else str(value))
        table.add_row(key, text)
    out.print(table)
