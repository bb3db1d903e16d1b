"""``muselab eval``: distribution metrics (the default sub-command), copies, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from muselab.commands import err, eval_app, out, user_errors

if TYPE_CHECKING:
    from muselab.evaluate.metrics import MetricResult
    from muselab.evaluate.sources import ImageSet

Source = Annotated[str, typer.Argument(
    help="A run (directory, number or name), an image folder or a built-in data set.")]
Features = Annotated[str, typer.Option(
    help="Feature extractor: inception-v3, mobilenet-v2 (in-house), fid-inception "
         "(needs --feature-weights), pixels, random.")]
FeatureWeights = Annotated[Path | None, typer.Option(
    help="Weights file for the extractor, e.g. pytorch-fid's pt_inception-2015-12-05.")]
Res = Annotated[int | None, typer.Option(
    help="Common resolution (default: the run's, else the folder's first image).",
    min=8, max=1024)]
Seed = Annotated[int, typer.Option(help="Seed: generation seeds, subsets, bootstrap.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
RunsDir = Annotated[Path | None, typer.Option(help="Where runs are (default ./runs).")]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]


def register(app: typer.Typer) -> None:
    """The commands live on ``eval_app`` (wired into the root app by :mod:`muselab.cli`)."""


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def results_table(results: list[MetricResult], title: str) -> Table:
    """A table: score, value, 95 % CI, N real, N generated, features."""
    table = Table("score", "value", "± std", "95% CI", "N ref", "N gen", "features",
                  title=title, caption="CI: percentile bootstrap; std: KID over subsets")
    for r in results:
        std = _fmt(r.extra["std"]) if "std" in r.extra else ""
        ci = "-" if r.ci_low is None else f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
        feats = r.extractor + (" (in-house)" if r.in_house else "")
        table.add_row(r.name, _fmt(r.value), std, ci, str(r.n_real), str(r.n_fake), feats)
    return table


def append_records(run: Path, records: list[dict[str, Any]]) -> Path:
    """Append eval records to ``run/metrics.jsonl`` as the training callbacks write it."""
    from muselab.train.callbacks import append_jsonl_line

    path = run / "metrics.jsonl"
    for rec in records:
        append_jsonl_line(path, rec)
    return path


@eval_app.command("metrics")
@user_errors
def metrics_cmd(
    source: Source,
    ref: Annotated[str, typer.Option(help="Reference set: built-in name or folder.")] = "emoji",
    metrics: Annotated[str, typer.Option(help="Comma list of fid, kid, pr, dc, swd.")] =
        "fid,kid,pr,dc,swd",
    n: Annotated[int, typer.Option(help="Images per set (fewer if the reference has fewer).",
                                   min=1, max=100_000)] = 2000,
    features: Features = "inception-v3",
    feature_weights: FeatureWeights = None,
    res: Res = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the CIs (0: none).",
                                           min=0, max=10_000)] = 20,
    seed: Seed = 0,
    best: Annotated[bool, typer.Option(help="Use the run's best checkpoint.")] = False,
    record: Annotated[bool, typer.Option(help="Append to the run's metrics.jsonl.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write results here.")]
        = None,
    device: Device = "auto",
    runs_dir: RunsDir = None,
    progress: Progress = True,
) -> None:
    """Distribution metrics of a run (or folder) against a reference set, with N and CIs."""
    from muselab.evaluate.features import get_extractor
    from muselab.evaluate.metrics import evaluate, parse_metrics
    from muselab.evaluate.sources import load_pair
    from muselab.io import write_json

    parse_metrics(metrics)  # fail on a bad name before any work
    extractor = get_extractor(features, feature_weights, device)
    fake, real = load_pair(source, ref, n, resolution=res, seed=seed, runs_dir=runs_dir,
                           device=device, best=best, progress=progress)
    t0 = time.perf_counter()
    result = evaluate(real.images, fake.images, metrics, extractor, n_boot=bootstrap,
                      seed=seed, progress=progress)
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    res_px = fake.images.shape[1]
    name = fake.run_dir.name if fake.run_dir is not None else source
    out.print(results_table(result.results, f"{name} vs {ref} at {res_px}px"))
    if any(r.in_house for r in result.results):
        out.print("in-house: features from the nsfwjs-converted backbone; compare muselab "
                  "runs with each other, not with published FIDs (use --features fid-inception)")
    context = {"source": "eval", "ref": ref, "seed": seed, "bootstrap": bootstrap,
               "resolution": res_px, "step": fake.step if fake.step is not None else 0,
               "eval_seconds": time.perf_counter() - t0}
    records = [r.record(**context) for r in result.results]
    if fake.run_dir is not None and record:
        path = append_records(fake.run_dir, records)
        err.print(f"appended {len(records)} records to {path}")
    if json_out is not None:
        write_json(json_out, {"records": records, "warnings": result.warnings,
                              "generated": fake.info, "reference": real.info})


def check_copies(
    source: str, ref: str | None, n: int, *, res: int | None, features: str,
    feature_weights: Path | None, threshold: float, seed: int, device: str,
    runs_dir: Path | None, progress: bool,
) -> tuple[Any, ImageSet, ImageSet]:
    """(CopyReport, generated set, training set) for ``source`` against ``ref`` or the run's
    own training data."""
    from muselab.errors import ConfigError
    from muselab.evaluate.features import get_extractor
    from muselab.evaluate.memorisation import find_copies
    from muselab.evaluate.sources import (
        load_data,
        load_source,
        native_resolution,
        resolve_run,
        training_set,
    )

    run = resolve_run(source, runs_dir)
    if run is None and ref is None:
        raise ConfigError(f"{source} is not a run: say what it might copy with --ref")
    resolution = int(res or native_resolution(source, runs_dir) or 64)
    if ref is not None:
        train = load_data(ref, None, resolution, seed, progress)
    else:
        assert run is not None
        train = training_set(run, resolution)
    gen = load_source(source, n, resolution, seed, runs_dir=runs_dir, device=device,
                      progress=progress)
    extractor = get_extractor(features, feature_weights, device)
    report = find_copies(gen.images, train.images, extractor, threshold=threshold,
                         progress=progress)
    return report, gen, train


@eval_app.command("copies")
@user_errors
def copies_cmd(
    source: Source,
    ref: Annotated[str | None, typer.Option(
        help="Training set to compare with (default: the run's own training data).")] = None,
    n: Annotated[int, typer.Option(help="Generated images to check.", min=1, max=100_000)]
        = 256,
    threshold: Annotated[float, typer.Option(
        help="Flag ratios (NN distance / train-to-train NN distance) under this.")] = 0.2,
    features: Features = "pixels",
    feature_weights: FeatureWeights = None,
    top: Annotated[int, typer.Option(help="Closest pairs on the contact sheet.", min=1,
                                     max=256)] = 16,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: "
                                                 "RUN/eval).")] = None,
    res: Res = None,
    seed: Seed = 0,
    record: Annotated[bool, typer.Option(help="Append to the run's metrics.jsonl.")] = True,
    device: Device = "auto",
    runs_dir: RunsDir = None,
    progress: Progress = True,
) -> None:
    """Memorisation check: nearest training images of generated ones, possible copies."""
    from muselab.evaluate.memorisation import contact_sheet
    from muselab.image.io import save_png
    from muselab.io import write_json

    report, gen, train = check_copies(
        source, ref, n, res=res, features=features, feature_weights=feature_weights,
        threshold=threshold, seed=seed, device=device, runs_dir=runs_dir, progress=progress)
    folder = out_dir or (gen.run_dir / "eval" if gen.run_dir else Path("eval"))
    summary = report.to_dict()
    write_json(folder / "copies.json", {**summary, "generated": gen.info,
                                        "train": train.info})
    sheet = contact_sheet(report, gen.images, train.images, top=top)
    save_png(folder / "copies.png", sheet, {"threshold": threshold, "features": features,
                                            "generated": gen.info, "train": train.spec})
    table = Table("gen #", "pixel ratio", "feature ratio", "train # (px / ft)", "flag",
                  title=f"closest {min(top, len(report.matches))} of {len(report.matches)}")
    for m in report.closest(top):
        table.add_row(str(m.index), f"{m.pixel_ratio:.3f}", f"{m.feature_ratio:.3f}",
                      f"{m.pixel_train} / {m.feature_train}", "COPY?" if m.flagged else "")
    out.print(table)
    out.print(f"{len(report.flagged)} of {len(report.matches)} generated images flagged "
              f"(ratio < {threshold} in full-resolution pixels or in {features} features); "
              f"contact sheet {folder}/copies.png")
    if gen.run_dir is not None and record:
        append_records(gen.run_dir, [{
            "metric": "copies", "value": summary["flagged_fraction"], "n": len(report.matches),
            "n_real": report.n_train, "n_fake": report.n_generated, "features": features,
            "threshold": threshold, "source": "eval", "step": gen.step or 0, "seed": seed,
            "ratio_quantiles": summary["ratio_quantiles"]}])


@eval_app.command("report")
@user_errors
def report_cmd(
    run: Annotated[str, typer.Argument(help="Run directory, number or name.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default: "
                                                 "RUN/report).")] = None,
    n: Annotated[int, typer.Option(help="Images generated for the copy check and the "
                                   "aesthetics histograms.", min=2, max=10_000)] = 128,
    value_model: Annotated[Path | None, typer.Option(
        help="A value model folder (muselab rate) for the value section.")] = None,
    seed: Seed = 0,
    device: Device = "auto",
    runs_dir: RunsDir = None,
) -> None:
    """A Markdown + HTML page: metrics over steps, nearest pairs, aesthetics, value model."""
    from muselab.errors import MuselabError
    from muselab.evaluate.report import write_report
    from muselab.evaluate.sources import resolve_run

    if value_model is not None and not (value_model / "config.json").is_file():
        raise MuselabError(f"--value-model {value_model}: no value model there (config.json); "
                           "train one with muselab rate")
    path = resolve_run(run, runs_dir)
    if path is None:
        raise MuselabError(f"{run!r} is not a run directory (needs config.json and "
                           "model.safetensors)")
    md, html = write_report(path, out_dir, n=n, seed=seed, device=device,
                            value_model=value_model)
    out.print(f"wrote {md} and {html}")

