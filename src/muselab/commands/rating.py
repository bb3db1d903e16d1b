"""``muselab`` commands: rate images, rank a batch by learned value, print aesthetics.

* ``muselab rate DIR``: a terminal rating loop; the next image is the one the value
  model is least sure about (active learning), ratings go to the studio database.
* ``muselab rank DIR --top 16 --out BEST``: sort a batch by predicted value, copy (or
  link) the best, write ``ranking.csv`` and a contact sheet.
* ``muselab aesthetics IMAGE_OR_DIR``: the computational aesthetic measures, as a table
  or CSV.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from muselab.commands import err, out, user_errors
from muselab.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np

    from muselab.evaluate.value import FitReport, Prediction, ValueModel
    from muselab.store.ratings import Candidates, RatingStore

DbOpt = Annotated[Path | None, typer.Option(
    "--db", help="Studio database (default <data home>/studio.sqlite3).")]
RaterOpt = Annotated[str, typer.Option(help="Whose ratings (several people can rate).")]
BackboneOpt = Annotated[str, typer.Option(
    help="Features besides aesthetics: auto (mobilenet-v2 if fetched), none, random, "
         "mobilenet-v2, inception-v3.")]
ResOpt = Annotated[int, typer.Option(help="Feature resolution (images are centre-cropped).",
                                     min=16, max=512)]
PROMPT = "rate 1-5 or h/m/l, s = skip, q = quit"


def _model(res: int, backbone: str) -> ValueModel:
    from muselab.evaluate.value import ValueConfig, ValueModel

    model = ValueModel(ValueConfig(res=res, backbone=backbone))
    model.featurizer.progress = True
    return model


def _fit(model: ValueModel, store: RatingStore, rater: str | None, cands: Candidates,
         evaluate: bool = True) -> FitReport:
    return model.fit(store, rater=rater, pool=cands.thumbs, pool_keys=cands.shas,
                     evaluate=evaluate)


def _warn_skipped(cands: Candidates) -> None:
    for path, reason in cands.skipped[:5]:
        err.print(f"skipped {path}: {reason}", highlight=False)
    if len(cands.skipped) > 5:
        err.print(f"... and {len(cands.skipped) - 5} more unreadable files", highlight=False)


def _probs_text(pred: Prediction, i: int) -> str:
    p = pred.probs[i]
    return f"low {p[0]:.2f} / medium {p[1]:.2f} / high {p[2]:.2f}"


def _ask() -> str:
    try:
        return str(typer.prompt(PROMPT, default="", show_default=False)).strip().lower()
    except (EOFError, KeyboardInterrupt, typer.Abort):
        return "q"


def _show(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as img:
        img.show(title=path.name)


def _pick(model: ValueModel, cands: Candidates, done: set[str],
          rng: np.random.Generator, explore: float) -> int | None:
    """The next image to rate (epsilon-greedy uncertainty sampling), or None when all
    are rated or skipped."""
    import numpy as np

    exclude = np.array([s in done for s in cands.shas])
    if exclude.all():
        return None
    if rng.random() < explore:
        return int(rng.choice(np.flatnonzero(~exclude)))
    return int(model.next_to_rate(cands.thumbs, 1, keys=cands.shas, exclude=exclude)[0])


@user_errors
def rate(
    directory: Annotated[Path, typer.Argument(help="Folder of images to rate.")],
    rater: RaterOpt = "me",
    db: DbOpt = None,
    show: Annotated[bool, typer.Option(help="Open each image in the OS image viewer.")] = False,
    explore: Annotated[float, typer.Option(
        help="Share of picks made at random instead of by uncertainty.", min=0.0, max=1.0)] = 0.1,
    limit: Annotated[int | None, typer.Option(help="Stop after this many ratings.", min=1)] = None,
    res: ResOpt = 64,
    backbone: BackboneOpt = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the random picks.")] = 0,
) -> None:
    """Rate images in the terminal; the model asks about the images it is least sure of."""
    import numpy as np

    from muselab.evaluate.value import default_model_dir
    from muselab.store.ratings import RatingStore, load_candidates

    store = RatingStore.open(db)
    cands = load_candidates(directory, progress=True)
    _warn_skipped(cands)
    model = _model(res, backbone)
    done = store.rated(rater)
    out.print(f"{len(cands)} images in {directory}, {sum(s in done for s in cands.shas)} "
              f"already rated by {rater}; {store.count(rater)} ratings in total")
    if store.count(rater):
        out.print(_fit(model, store, rater, cands).summary())
    else:
        model.use_prior(cands.thumbs, cands.shas)
    rng = np.random.default_rng(seed)
    added = 0
    while limit is None or added < limit:
        i = _pick(model, cands, done, rng, explore)
        if i is None:
            out.print("every image here is rated or skipped")
            break
        pred = model.predict([cands.thumbs[i]], keys=[cands.shas[i]])
        out.print(f"\n[bold]{cands.paths[i]}[/]  (model: {_probs_text(pred, 0)})")
        if show:
            _show(cands.paths[i])
        answer = _ask()
        if answer in ("q", "quit"):
            break
        if answer in ("s", "skip", ""):
            done.add(cands.shas[i])
            continue
        try:
            rating = store.add(cands.paths[i], answer, rater)
        except ConfigError as exc:
            err.print(f"{exc}", highlight=False)
            continue
        done.add(rating.sha256)
        added += 1
        report = _fit(model, store, rater, cands, evaluate=added % 5 == 0)
        if added % 5 == 0:
            out.print(report.summary())
    if store.count(rater):
        if added % 5:
            _fit(model, store, rater, cands)  # the saved model carries fresh held-out figures
        target = model.save(default_model_dir(store, rater))
        out.print(f"{added} new ratings; model saved to {target}")
        if model.report is not None:
            out.print(f"{model.report.summary()}\n{model.report.note}")


def _ranked_model(store: RatingStore, rater: str | None, cands: Candidates, model_dir: Path | None,
                  prior: bool, res: int, backbone: str) -> ValueModel:
    from muselab.evaluate.value import ValueModel

    if model_dir is not None:
        return ValueModel.load(model_dir)
    model = _model(res, backbone)
    if store.count(rater):
        out.print(_fit(model, store, rater, cands).summary())
    elif not prior:
        who = f" by {rater}" if rater else ""
        raise DataError(f"the ratings table in {store.path} has no ratings{who}: rate some "
                        "images with `muselab rate DIR`, or pass --prior to rank by the "
                        "aesthetics-only prior")
    else:
        out.print("no ratings: ranking by the aesthetics-only prior")
        model.use_prior(cands.thumbs, cands.shas)
    return model


def _write_ranking(dest: Path, cands: Candidates, pred: Prediction, order: list[int], top: int,
                   link: bool, meta: dict[str, Any]) -> None:
    from muselab.evaluate.active import to_res
    from muselab.image.io import make_grid, save_png
    from muselab.io import atomic_open, ensure_dir

    ensure_dir(dest)
    for rank_i, i in enumerate(order[:top], start=1):
        target = dest / f"{rank_i:03d}_{cands.paths[i].name}"
        if target.exists() or target.is_symlink():
            target.unlink()
        if link:
            os.symlink(cands.paths[i].absolute(), target)
        else:
            shutil.copy2(cands.paths[i], target)
    with atomic_open(dest / "ranking.csv", "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["rank", "path", "sha256", "score", "p_low", "p_medium", "p_high"])
        for rank_i, i in enumerate(order, start=1):
            p = pred.probs[i]
            writer.writerow([rank_i, cands.paths[i], cands.shas[i], f"{pred.score[i]:.6f}",
                             f"{p[0]:.6f}", f"{p[1]:.6f}", f"{p[2]:.6f}"])
    thumbs = to_res([cands.thumbs[i] for i in order[:top]], 64)
    save_png(dest / "contact_sheet.png", make_grid(thumbs), meta)


@user_errors
def rank(
    directory: Annotated[Path, typer.Argument(help="Folder of (generated) images.")],
    top: Annotated[int, typer.Option(help="How many to keep.", min=1)] = 16,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Copy the top images here, with ranking.csv and contact_sheet.png.")] = None,
    link: Annotated[bool, typer.Option(help="Symlink instead of copying.")] = False,
    rater: Annotated[str | None, typer.Option(help="Use this rater's ratings (default: all)."
                                              )] = None,
    db: DbOpt = None,
    model_dir: Annotated[Path | None, typer.Option(
        "--model", help="A saved value model folder instead of fitting on the ratings.")] = None,
    prior: Annotated[bool, typer.Option(help="Without ratings, rank by the aesthetics prior."
                                        )] = False,
    res: ResOpt = 64,
    backbone: BackboneOpt = "auto",
) -> None:
    """Sort a batch by the value model's score (best first) and keep the top ones."""
    import numpy as np

    from muselab.store.ratings import RatingStore, load_candidates

    store = RatingStore.open(db)
    cands = load_candidates(directory, progress=True)
    _warn_skipped(cands)
    model = _ranked_model(store, rater, cands, model_dir, prior, res, backbone)
    pred = model.predict(cands.thumbs, keys=cands.shas)
    order = [int(i) for i in np.argsort(-pred.score, kind="stable")]
    table = Table("rank", "score", "P(low)", "P(med)", "P(high)", "image")
    for rank_i, i in enumerate(order[:top], start=1):
        p = pred.probs[i]
        table.add_row(str(rank_i), f"{pred.score[i]:.3f}", f"{p[0]:.2f}", f"{p[1]:.2f}",
                      f"{p[2]:.2f}", str(cands.paths[i]))
    out.print(table)
    if out_dir is not None:
        report = model.report
        meta = {"what": "muselab rank contact sheet", "source": str(directory),
                "rater": rater or "all", "ratings": report.n if report else 0,
                "backbone": model.featurizer.backbone_name or "none",
                "order": [str(cands.paths[i]) for i in order[:top]]}
        _write_ranking(out_dir, cands, pred, order, top, link, meta)
        out.print(f"wrote the top {min(top, len(order))} of {len(order)}, ranking.csv and "
                  f"contact_sheet.png to {out_dir}")


def _scores_by_size(thumbs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Aesthetic measures of square images of possibly different sizes, one batch per size
    (measures such as sharpness depend on the resolution, so nothing is resampled)."""
    import numpy as np

    from muselab.evaluate.aesthetics import aesthetic_scores, measure_names

    scores = {name: np.zeros(len(thumbs)) for name in measure_names()}
    sides = np.array([t.shape[0] for t in thumbs])
    for side in np.unique(sides):
        idx = np.flatnonzero(sides == side)
        for name, values in aesthetic_scores(np.stack([thumbs[i] for i in idx])).items():
            scores[name][idx] = values
    return scores


@user_errors
def aesthetics(
    path: Annotated[Path, typer.Argument(help="An image file or a folder of images.")],
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of a table.")
                      ] = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the CSV here.")
                        ] = None,
    res: Annotated[int, typer.Option(help="Images are centre-cropped and resized to at most "
                                          "this side.", min=16, max=1024)] = 128,
) -> None:
    """Computational aesthetic measures (docs/aesthetics.md) of one image or a folder."""
    import numpy as np

    from muselab.io import atomic_open
    from muselab.store.ratings import load_candidates

    cands = load_candidates(path, res=res, progress=not as_csv)
    _warn_skipped(cands)
    scores = _scores_by_size(cands.thumbs)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", *scores])
    for i, p in enumerate(cands.paths):
        writer.writerow([p, *(f"{v[i]:.6g}" for v in scores.values())])
    if out_file is not None:
        with atomic_open(out_file, "w") as fh:
            fh.write(buf.getvalue())
    if as_csv:
        typer.echo(buf.getvalue(), nl=False)
        return
    table = Table("image", *scores)
    for i, p in enumerate(cands.paths):
        table.add_row(p.name, *(f"{v[i]:.3g}" for v in scores.values()))
    if len(cands) > 1:
        table.add_row("[bold]mean[/]", *(f"{np.mean(v):.3g}" for v in scores.values()))
        table.add_row("[bold]sd[/]", *(f"{np.std(v):.3g}" for v in scores.values()))
    out.print(table)
    sizes = sorted({t.shape[0] for t in cands.thumbs})
    out.print(f"{len(cands)} images at {', '.join(map(str, sizes))} px"
              + (f"; CSV in {out_file}" if out_file else ""))


def register(app: typer.Typer) -> None:
    """Add ``rate``, ``rank`` and ``aesthetics`` to the root app."""
    app.command("rate")(rate)
    app.command("rank")(rank)
    app.command("aesthetics")(aesthetics)
