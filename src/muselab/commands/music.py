"""``muselab`` commands: music (``compose`` and ``eval music``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from muselab.commands import err, eval_app, out, user_errors
from muselab.errors import ConfigError

if TYPE_CHECKING:
    from muselab.music.tokens import Piece


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app (``eval music`` lives on ``eval_app``)."""
    app.command("compose")(compose)


@user_errors
def compose(
    style: Annotated[str, typer.Option(help="bach (four-part chorale) or folk (melody).")]
        = "bach",
    bars: Annotated[int, typer.Option(help="Bars to write (to add, with --continue).",
                                      min=1, max=256)] = 16,
    key: Annotated[str | None, typer.Option(
        help="Key, e.g. 'D minor', 'Bb major', 'f#' (lower case: minor). Default: C major, "
             "or the key of the --continue/--harmonize file.")] = None,
    tempo: Annotated[float | None, typer.Option(help="Beats per minute (default 90, or the "
                                                     "file's).", min=20, max=300)] = None,
    meter: Annotated[str, typer.Option(help="Time signature, e.g. 4/4, 3/4, 6/8.")] = "4/4",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same piece).")] = 0,
    out_path: Annotated[Path, typer.Option("--out", help="Output path without suffix: writes "
                                           "OUT.mid, OUT.wav, OUT.png, OUT.json.")]
        = Path("piece"),
    n: Annotated[int, typer.Option(help="Number of pieces (OUT-000.mid, ...).", min=1,
                                   max=1024)] = 1,
    continue_from: Annotated[Path | None, typer.Option(
        "--continue", help="Continue the music of this MIDI file.")] = None,
    harmonize: Annotated[Path | None, typer.Option(
        help="Write alto, tenor and bass under the top line of this MIDI file.")] = None,
    model: Annotated[str | None, typer.Option(
        help="Shipped model name, run or model file (default: bach-chorale).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).",
                                               min=0.0, max=5.0)] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass (1: off).", min=0.01,
                                         max=1.0)] = 0.95,
    wav: Annotated[bool, typer.Option(help="Render WAV with fluidsynth.")] = True,
    cadence: Annotated[bool, typer.Option(
        help="End on the key's tonic chord: held through the last bar, or under the last "
             "melody note with --harmonize (when it is a tonic-chord note).")]
        = True,
) -> None:
    """Compose music with a Transformer: MIDI, WAV (fluidsynth) and a piano-roll PNG."""
    from muselab.music.compose import Composer, Sampling, parse_meter
    from muselab.music.midi import read_midi
    from muselab.music.tokens import Key, parse_key

    if continue_from is not None and harmonize is not None:
        raise ConfigError("--continue and --harmonize: choose one")
    the_key = parse_key(key) if key is not None else None
    sig = parse_meter(meter)
    composer = Composer.load(model or _default_model(style))
    sampling = Sampling(temperature=temperature, top_p=None if top_p >= 1 else top_p)
    t0 = time.perf_counter()
    source = continue_from or harmonize
    if source is not None:
        given = read_midi(source, style=style)
        given.key = the_key or given.key
        given.tempo = tempo or given.tempo
        if continue_from is not None:
            pieces = [composer.continue_piece(given, bars=bars, seed=seed + i, sampling=sampling,
                                              cadence=cadence) for i in range(n)]
        else:
            pieces = [composer.harmonize(given, seed=seed + i, sampling=sampling,
                                         cadence=cadence) for i in range(n)]
    else:
        pieces = composer.compose(style=style, bars=bars, key=the_key or Key(0),
                                  time_signature=sig, tempo=tempo or 90.0, n=n, seed=seed,
                                  sampling=sampling, cadence=cadence)
    seconds = time.perf_counter() - t0
    mode = "continue" if continue_from else "harmonize" if harmonize else "compose"
    meta: dict[str, Any] = {"model": composer.source, "style": style, "seed": seed,
                            "mode": mode, "temperature": temperature, "top_p": top_p,
                            "cadence": cadence,
                            "input": str(source) if source else None}
    _write_all(pieces, out_path, meta, wav)
    out.print(f"{mode}: {len(pieces)} piece(s), {sum(p.bars() for p in pieces)} bars in "
              f"{seconds:.2f} s")


#: The shipped model of each style.
DEFAULT_MODELS = {"bach": "bach-chorale", "folk": "folk-tunes"}


def _default_model(style: str) -> str:
    from muselab.errors import MuselabError
    from muselab.models.zoo import find_pretrained

    name = DEFAULT_MODELS.get(style, "bach-chorale")
    try:
        find_pretrained(name)
    except MuselabError:
        err.print(f"[yellow]note:[/] no shipped {name!r} model; using bach-chorale, which has "
                  f"not seen {style} music (train one: muselab train music-{style})",
                  highlight=False)
        return "bach-chorale"
    return name


def _write_all(pieces: list[Piece], stem: Path, meta: dict[str, Any], wav: bool) -> None:
    from muselab.music.compose import write_piece

    for i, piece in enumerate(pieces):
        path = stem if len(pieces) == 1 else stem.with_name(f"{stem.name}-{i:03d}")
        files = write_piece(piece, path, {**meta, "seed": meta["seed"] + i}, wav=wav)
        out.print("  ".join(v for k, v in files.items() if k != "wav_note"))
        if "wav_note" in files and i == 0:
            err.print(f"[yellow]note:[/] {files['wav_note']}", highlight=False)


@eval_app.command("music")
@user_errors
def eval_music(
    folder: Annotated[Path, typer.Argument(help="Folder of generated .mid files.")],
    reference: Annotated[str, typer.Option(
        help="Corpus whose held-out pieces are the real reference: bach-chorales or "
             "essen-folk.")] = "bach-chorales",
    seed: Annotated[int, typer.Option(help="Seed of the random-notes baseline.")] = 0,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Where to write the numbers (default FOLDER/music-metrics.json).")]
        = None,
) -> None:
    """Music metrics of generated MIDI files vs held-out real pieces and random notes."""
    from muselab.io import write_json
    from muselab.music.evaluate import evaluate_folder

    report = evaluate_folder(folder, reference, seed=seed)
    out.print(_metrics_table(report, folder, reference))
    path = json_out or folder / "music-metrics.json"
    write_json(path, report)
    out.print(f"wrote {path}")


def _metrics_table(report: dict[str, Any], folder: Path, reference: str) -> Table:
    sets, n = report["summary"], report["n"]
    table = Table("metric", "generated", "held-out", "random", "in p10-p90", "in min-max",
                  title=f"music metrics of {folder}",
                  caption=f"mean (p10 - p90); generated n={n['generated']}, held-out "
                          f"{reference} n={n['real']}, random notes n={n['random']}")
    for name in sets["generated"]:
        cells = [_cell(sets[s].get(name)) for s in ("generated", "real", "random")]
        flags = [report[k].get(name) for k in ("inside_real", "inside_real_range")]
        table.add_row(name, *cells, *("-" if f is None else "yes" if f else "no" for f in flags))
    return table


def _cell(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.3f} ({stats['p10']:.3f} - {stats['p90']:.3f})"
