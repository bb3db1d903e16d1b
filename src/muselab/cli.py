"""The ``muselab`` command line: thin over the library.

Every command turns a :class:`~muselab.errors.MuselabError` into one line on
stderr (``error: ...``) and exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from muselab import __version__
from muselab.commands import _modules, err, eval_app, out, user_errors
from muselab.errors import ConfigError

app = typer.Typer(help="muselab: an AI art studio. Train, explore and evaluate generative models.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Built-in data sets and image folders.", no_args_is_help=True)
runs_app = typer.Typer(help="Training runs.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(eval_app, name="eval")

#: The best recipe by final SWD on emoji at 32 px in 55 CPU minutes (docs/training.md).
DEFAULT_MODEL = "dcgan"

def _version(value: bool) -> None:
    if value:
        out.print(f"muselab {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More log output.")] = False,
    no_provenance: Annotated[bool, typer.Option(
        "--no-provenance", help="Write outputs without label, watermark or signature "
        "(same as MUSELAB_PROVENANCE=0).")] = False,
) -> None:
    """muselab command line."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if no_provenance:
        os.environ["MUSELAB_PROVENANCE"] = "0"


# -- train ------------------------------------------------------------------------------------


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``section.key=value`` pairs (values parsed as JSON when they can be) -> nested dict."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@app.command()
@user_errors
def train(
    model: Annotated[str | None, typer.Argument(help="Registered model (muselab models).")] = None,
    data: Annotated[str | None, typer.Option(help="Built-in data set or image folder.")] = None,
    res: Annotated[int | None, typer.Option(help="Training resolution (8-128).")] = None,
    steps: Annotated[int | None, typer.Option(help="Total optimisation steps.")] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    config: Annotated[Path | None, typer.Option(help="A .toml or .json config file.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: section.key=value "
                                                   "(e.g. model_config.net.g_width=32).")] = None,
    conditional: Annotated[bool | None, typer.Option(help="Condition on class labels.")] = None,
    text: Annotated[bool | None,
                    typer.Option(help="Condition on captions (text-diffusion).")] = None,
    holdout: Annotated[int | None, typer.Option(help="Leave out N images (fixed split).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue this run exactly.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs go (default ./runs).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes on this machine "
                                       "(wraps torchrun; docs/scale.md).", min=1)] = 1,
) -> None:
    """Train a model; every run gets a numbered directory under runs/."""
    from muselab.config import load_file
    from muselab.train import ddp

    if nproc > 1 and not ddp.env_world().distributed:
        raise typer.Exit(ddp.launch(nproc, ddp.launch_args(sys.argv[1:], "train")))
    from muselab.train.run import resolve_config, resume_run, start_run
    from muselab.train.rundir import find_run, runs_root

    root_dir = runs_root(runs_dir)
    overrides = parse_sets(set_ or [])
    train_cli = _drop_none({"steps": steps, "batch_size": batch, "seed": seed, "device": device})
    data_cli = _drop_none({"source": data, "resolution": res, "conditional": conditional,
                           "text": text, "holdout": holdout,
                           "limit": limit})
    if not progress:
        train_cli["progress"] = False
    if resume:
        if model or data or res or batch or seed is not None or config or data_cli:
            raise ConfigError("--resume continues a run as configured; only --steps may change")
        run = find_run(resume, root_dir)
        trainer = resume_run(run, steps=steps, train_overrides={
            **overrides.get("train", {}), **({"progress": False} if not progress else {})})
        if trainer.world.is_main:
            err.print(f"resuming {run} at step {trainer.step}")
    else:
        file = load_file(config) if config else {}
        name = model or file.get("model") or DEFAULT_MODEL
        merged = {"data": data_cli, "train": train_cli}
        cfg = resolve_config(name, file, _merge(overrides, merged))
        trainer = start_run(cfg, root_dir)
        if trainer.world.is_main:
            err.print(f"run directory: {trainer.run_dir}")
    result = trainer.fit()
    if result.interrupted:
        err.print(f"stopped at step {result.step}; continue with: "
                  f"muselab train --resume {result.run_dir}")
        raise typer.Exit(130)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    from muselab.train.run import merge

    return merge(a, b)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# -- sample / interpolate -----------------------------------------------------------------------


def _pipeline(run: str, runs_dir: Path | None, device: str, best: bool) -> Any:
    from muselab.models.zoo import load_pipeline

    return load_pipeline(run, device=device, best=best, runs_dir=runs_dir)


@app.command()
@user_errors
def sample(
    run: Annotated[str, typer.Argument(help="Run (directory or number), model file or zoo name.")],
    n: Annotated[int, typer.Option(help="How many images.", min=1, max=4096)] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the first image; image i uses seed+i.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("samples"),
    label: Annotated[str | None, typer.Option("--class", help="Class name (conditional).")] = None,
    best: Annotated[bool, typer.Option(help="Use the run's best checkpoint.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are.")] = None,
) -> None:
    """Sample N images: one PNG per seed (with provenance metadata) and a grid."""
    from muselab.image.io import make_grid, save_png
    from muselab.io import ensure_dir

    ensure_dir(out_dir)
    pipe = _pipeline(run, runs_dir, device, best)
    seeds = list(range(seed, seed + n))
    images = pipe.generate(seeds, label)
    for s, img in zip(seeds, images, strict=True):
        save_png(out_dir / f"seed{s:06d}.png", img, pipe.provenance(seed=s, label=label))
    grid_meta = pipe.provenance(seeds=f"{seed}..{seed + n - 1}")
    save_png(out_dir / "grid.png", make_grid(images), grid_meta)
    out.print(f"wrote {n} images and grid.png to {out_dir}")


@app.command()
@user_errors
def interpolate(
    run: Annotated[str, typer.Argument(help="Run directory, run number or model.safetensors.")],
    seeds: Annotated[list[int], typer.Option(help="Two or more seeds to walk through.")],
    frames: Annotated[int, typer.Option(help="Frames between two seeds.", min=2, max=1000)] = 16,
    out_file: Annotated[Path, typer.Option("--out", help="Output .gif.")] = Path("walk.gif"),
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 12.0,
    loop: Annotated[bool, typer.Option(help="Return to the first seed.")] = False,
    scale: Annotated[int, typer.Option(help="Upscale factor (nearest).", min=1, max=16)] = 4,
    label: Annotated[str | None, typer.Option("--class", help="Class name (conditional).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are.")] = None,
) -> None:
    """A slerp walk through latent space between seeds, as an animated GIF."""
    from muselab.image.io import save_gif

    if len(seeds) < 2:
        raise ConfigError("--seeds: give at least two, e.g. --seeds 1 --seeds 2")
    if out_file.suffix.lower() != ".gif":
        raise ConfigError(f"--out {out_file}: the walk is written as a .gif")
    pipe = _pipeline(run, runs_dir, device, False)
    frames_u8 = pipe.interpolate(seeds, frames, loop=loop, label=label)  # [T, H, W, C]
    frames_u8 = frames_u8.repeat(scale, axis=1).repeat(scale, axis=2)
    save_gif(out_file, list(frames_u8), fps=fps,
             comment=json.dumps(pipe.provenance(seeds=seeds, frames=frames)))
    out.print(f"wrote {len(frames_u8)} frames to {out_file}")


# -- runs / models ------------------------------------------------------------------------------


@runs_app.command("list")
@user_errors
def runs_list(
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are.")] = None,
) -> None:
    """Runs with their model, data, step and latest quality."""
    from muselab.train.rundir import list_runs, runs_root

    table = Table("run", "model", "data", "step", "swd", "best")
    for run in list_runs(runs_root(runs_dir)):
        table.add_row(run.name, *_run_row(run))
    out.print(table)


def _run_row(run: Path) -> list[str]:
    from muselab.train.checkpoint import STATE_FILE, load_state

    try:
        cfg = json.loads((run / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return ["?", "?", "-", "-", "-"]
    step = "-"
    if (run / STATE_FILE).is_file():
        step = f"{load_state(run / STATE_FILE)['step']}/{cfg['train']['steps']}"
    swd = best = "-"
    from muselab.evaluate.report import read_metrics

    values = [r["value"] for r in read_metrics(run)
              if r["metric"] == "swd" and r.get("source") != "eval"]
    if values:
        swd, best = f"{values[-1]:.1f}", f"{min(values):.1f}"
    data = f"{cfg['data']['source']}@{cfg['data']['resolution']}"
    return [cfg["model"], data, step, swd, best]


models_app = typer.Typer(help="Training recipes and the pretrained model zoo.",
                         invoke_without_command=True)
app.add_typer(models_app, name="models")


@models_app.callback()
def models(ctx: typer.Context) -> None:
    """Recipes you can train and pretrained models you can use (muselab models list)."""
    if ctx.invoked_subcommand is None:
        models_list()


@models_app.command("list")
@user_errors
def models_list() -> None:
    """Registered recipes and the pretrained models found (muselab models card NAME)."""
    from muselab.models.registry import list_models
    from muselab.models.zoo import list_pretrained

    table = Table("recipe", "description", title="recipes (muselab train RECIPE)")
    for spec in list_models():
        table.add_row(spec.name + (" (default)" if spec.name == DEFAULT_MODEL else ""),
                      spec.description)
    out.print(table)
    zoo = Table("name", "recipe", "licence", "description", title="pretrained models")
    for entry in list_pretrained():
        zoo.add_row(entry.name, entry.recipe, entry.licence, entry.description)
    out.print(zoo)


@models_app.command("card")
@user_errors
def models_card(name: Annotated[str, typer.Argument(help="A pretrained model's name.")]) -> None:
    """Print a pretrained model's card: data, licence, recipe, metrics, limits."""
    from muselab.models.zoo import find_pretrained

    entry = find_pretrained(name)
    out.print(entry.card, markup=False, highlight=False)
    out.print(f"weights: {entry.weights} (sha256 {entry.sha256})", markup=False)


@models_app.command("export")
@user_errors
def models_export(
    run: Annotated[str, typer.Argument(help="Run (directory or number) or model file.")],
    name: Annotated[str, typer.Option(help="Name in the zoo.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (models/NAME).")],
    description: Annotated[str, typer.Option(help="One line: what it makes.")] = "",
    licence: Annotated[str, typer.Option(help="Licence of the weights (follows the data).")] = "",
    best: Annotated[bool, typer.Option(help="Export the best checkpoint.")] = False,
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are.")] = None,
) -> None:
    """Save a run as a zoo model: fp16 inference weights, meta.json with the sha256."""
    entry = _pipeline(run, runs_dir, "cpu", best).save_pretrained(
        out_dir, name=name, description=description, licence=licence)
    out.print(f"wrote {entry}")


# -- data ---------------------------------------------------------------------------------------


@data_app.command("list")
@user_errors
def data_list() -> None:
    """Built-in data sets, their licences and whether they are fetched."""
    from muselab.data import list_datasets

    table = Table("name", "version", "licence", "fetched", "description")
    for info in list_datasets():
        table.add_row(info.name, info.version, info.licence, "yes" if info.fetched else "no",
                      info.description)
    out.print(table)


@data_app.command("fetch")
@user_errors
def data_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Data sets (default: emoji).")] = None,
    tarball: Annotated[Path | None, typer.Option(help="Use this npm tarball (offline).")] = None,
) -> None:
    """Fetch built-in data sets into the data home (pinned, sha256-checked)."""
    from muselab.data import fetch_dataset

    chosen = names or ["emoji"]
    if tarball and len(chosen) != 1:
        raise ConfigError("--tarball: name exactly one data set")
    for name in chosen:
        path = fetch_dataset(name, tarball=tarball)
        out.print(f"{name}: {path}")


@data_app.command("inspect")
@user_errors
def data_inspect(
    path: Annotated[str, typer.Argument(help="Image folder or built-in data set name.")],
    sheet: Annotated[Path | None, typer.Option("--out", help="Contact sheet PNG path.")] = None,
    res: Annotated[int, typer.Option(help="Thumbnail resolution.")] = 64,
) -> None:
    """Counts, sizes, modes and bad files of a folder, and a contact sheet PNG."""
    from muselab.data import inspect_folder

    report = inspect_folder(path, out=sheet, resolution=res)
    out.print(report.render(), markup=False, highlight=False)


for _module in _modules():
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
