"""``muselab`` commands: cross-modal (``image2music`` and ``eval retrieval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from muselab.commands import eval_app, out, user_errors
from muselab.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add ``image2music`` to the root app (``eval retrieval`` lives on ``eval_app``)."""
    app.command("image2music")(image2music)


@user_errors
def image2music(
    image: Annotated[Path, typer.Argument(help="An image file (PNG, JPEG, ...).")],
    out_path: Annotated[Path, typer.Option("--out", help="Output path without suffix: writes "
                                           "OUT.mid, OUT.wav, OUT.png, OUT.json.")]
        = Path("piece"),
    bars: Annotated[int, typer.Option(help="Bars to write.", min=1, max=256)] = 16,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same piece).")] = 0,
    model: Annotated[str | None, typer.Option(
        help="Shipped music model, run or model file (default: bach-chorale).")] = None,
    candidates: Annotated[int, typer.Option(
        help="Pieces drawn; the one nearest the image's register and density is kept.",
        min=1, max=64)] = 16,
    wav: Annotated[bool, typer.Option(help="Render WAV with fluidsynth.")] = True,
    meaning: Annotated[bool, typer.Option(
        "--meaning", help="Also read the image's mood from its embedding in the shared space "
                          "(the shipped crossmodal-image encoder).")] = False,
    encoder: Annotated[str | None, typer.Option(
        help="Image encoder for --meaning: file, run or shipped name.")] = None,
) -> None:
    """Compose music steered by an image's colours and composition (Palmer et al. 2013)."""
    from muselab.crossmodal.image2music import image2music as run

    with out.status(f"composing {bars} bars x {candidates} candidates ..."):
        result = run(image, out=out_path, bars=bars, seed=seed, model=model,
                     candidates=candidates, wav=wav,
                     encoder=(encoder or "crossmodal-image") if meaning else None)
    meta = result["meta"]
    cond, got = meta["conditions"], meta["achieved"]
    table = Table("choice", "asked", "got", "why", title=f"{image} -> {out_path}")
    table.add_row("key", cond["key"], f"{got['key']} (analysed {meta['achieved_key_analysed']})",
                  cond["why"]["tonic"] + "; " + cond["why"]["mode"])
    table.add_row("tempo", f"{cond['tempo']:.0f}", f"{got['tempo']:.0f}", cond["why"]["tempo"])
    table.add_row("register", str(cond["register"]), f"{got['register']:.1f}",
                  cond["why"]["register"])
    table.add_row("density", f"{cond['density']:.2f}", f"{got['density']:.2f}",
                  cond["why"]["density"])
    table.add_row("metre", cond["meter"], cond["meter"], cond["why"]["meter"])
    out.print(table)
    out.print("  ".join(v for k, v in result["files"].items() if k != "wav_note"))


@eval_app.command("retrieval")
@user_errors
def eval_retrieval(
    kind: Annotated[str, typer.Argument(help="image, music or all.")] = "all",
    image_model: Annotated[str | None, typer.Option(
        help="Image encoder: file, run or shipped name (default crossmodal-image).")] = None,
    music_model: Annotated[str | None, typer.Option(
        help="Music encoder: file, run or shipped name (default crossmodal-music).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the numbers.")]
        = None,
) -> None:
    """Held-out retrieval recall@1/@5 of the shared space (image<->text, music<->text)."""
    from muselab.crossmodal.space import evaluate_retrieval
    from muselab.io import write_json

    if kind not in ("image", "music", "all"):
        raise ConfigError(f"KIND {kind!r} is not one of: image, music, all")
    report: dict[str, Any] = {}
    for k, model in (("image", image_model), ("music", music_model)):
        if kind in (k, "all"):
            with out.status(f"embedding held-out {k} pairs ..."):
                report[k] = evaluate_retrieval(k, model)
            out.print(_table(k, report[k]))
    if json_out is not None:
        write_json(json_out, report)
        out.print(f"wrote {json_out}")


def _table(kind: str, report: dict[str, dict[str, Any]]) -> Table:
    heads = ([f"{kind}->text\nR@{k}" for k in (1, 5)]
             + [f"text->{kind}\nR@{k}" for k in (1, 5)])
    table = Table("held-out set", "items", "texts", *heads,
                  title=f"{kind} <-> text retrieval, held out (chance in brackets)")
    for name, r in report.items():
        cells = [f"{r[f'{d} R@{k}']:.3f} ({r[f'{d} chance@{k}']:.3f})"
                 for d in ("item->text", "text->item") for k in (1, 5)]
        table.add_row(name, str(r["items"]), str(r["texts"]), *cells)
    return table
