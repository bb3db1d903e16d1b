"""``muselab eval report RUN``: one Markdown page (and its HTML rendering) about a run.

Sections: the run; the latest evaluation scores with N and CI (from ``metrics.jsonl``);
every metric over training steps; the last sample grid; the memorisation check (copy
ratios and the closest generated/training pairs); histograms of the computational
aesthetics of generated and training images (when :mod:`muselab.evaluate.aesthetics`
is installed); and, given a value model folder, its held-out figures and the predicted
value of generated versus training images. Plots are matplotlib PNGs next to the page.
"""

from __future__ import annotations

import html
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from muselab import __version__
from muselab.errors import MuselabError
from muselab.io import atomic_open, atomic_write, ensure_dir

PLOT_DPI = 110
log = logging.getLogger("muselab.evaluate")


@dataclass
class Context:
    """What the sections share: the run, its records, generated and training images."""

    run: Path
    out: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    generated: np.ndarray  # uint8 [n, R, R, 3]
    train: np.ndarray  # uint8 [T, R, R, 3], the run's whole training set
    seed: int
    value_model: Path | None


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """Records of ``run/metrics.jsonl`` (a torn last line is skipped)."""
    path = run / "metrics.jsonl"
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "metric" in rec and "value" in rec:
                records.append(rec)
    return records


def series_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(metric, label, "eval" or "training"): one line on a plot; the label names the
    features and N, since scores at different N are not comparable."""
    kind = "eval" if rec.get("source") == "eval" else "training"
    return str(rec["metric"]), f"{rec.get('features', 'images')}, N={rec.get('n', '?')}", kind


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib Figure as PNG atomically."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=PLOT_DPI,
                                               bbox_inches="tight"))


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{float(v):.4g}"


# --------------------------------------------------------------------------- sections


def section_run(ctx: Context) -> str:
    cfg = ctx.config
    data = cfg.get("data", {})
    rows = [("model", cfg.get("model")), ("data", f"{data.get('source')} at "
            f"{data.get('resolution')} px"), ("steps", cfg.get("train", {}).get("steps")),
            ("seed", cfg.get("train", {}).get("seed")), ("muselab", __version__)]
    return "\n".join(["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]])


def section_scores(ctx: Context) -> str:
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in ctx.records:
        if rec.get("source") == "eval" and rec["metric"] != "copies":
            latest[(rec["metric"], str(rec.get("features")), str(rec.get("ref")))] = rec
    if not latest:
        return ("No evaluation yet: run `muselab eval RUN --ref ...` to add FID, KID, "
                "precision/recall, density/coverage and SWD with N and CIs.")
    lines = ["| score | value | 95% CI | N ref | N gen | features | ref | step |",
             "|---|---|---|---|---|---|---|---|"]
    for (metric, feats, ref), r in sorted(latest.items()):
        value = _fmt(r["value"]) + (f" ± {_fmt(r['std'])}" if "std" in r else "")
        ci = "-" if r.get("ci_low") is None else f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        label = feats + (" (in-house)" if r.get("in_house") else "")
        lines.append(f"| {metric} | {value} | {ci} | {r.get('n_real', '-')} | "
                     f"{r.get('n_fake', r.get('n', '-'))} | {label} | {ref} | {r.get('step')} |")
    return "\n".join(lines)


def section_curves(ctx: Context) -> str:
    from matplotlib.figure import Figure

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in ctx.records:
        if rec["metric"] != "copies" and "step" in rec:
            groups[series_key(rec)].append(rec)
    if not groups:
        return "No metrics recorded yet."
    parts = []
    for metric in sorted({k[0] for k in groups}):
        fig = Figure(figsize=(6, 3.2))
        ax = fig.add_subplot()
        for key in sorted(k for k in groups if k[0] == metric):
            recs = sorted(groups[key], key=lambda r: r["step"])
            steps = np.array([r["step"] for r in recs])
            values = np.array([r["value"] for r in recs], dtype=float)
            ax.plot(steps, values, marker="o", ms=3, label=f"{key[1]} ({key[2]})")
            low = [r.get("ci_low") for r in recs]
            if all(v is not None for v in low):
                high = np.array([r["ci_high"] for r in recs], dtype=float)
                ax.fill_between(steps, np.array(low, dtype=float), high, alpha=0.2)
        ax.set_xlabel("training step")
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        name = f"curve-{metric}.png"
        save_figure(fig, ctx.out / name)
        parts.append(f"![{metric} over training steps]({name})")
    return "Shaded: 95% bootstrap interval, where recorded.\n\n" + "\n\n".join(parts)


def section_samples(ctx: Context) -> str:
    grids = sorted((ctx.run / "samples").glob("step-*.png"))
    if not grids:
        return "No sample grids in the run."
    shutil.copyfile(grids[-1], ctx.out / "samples.png")
    return f"Last grid from training (`{grids[-1].name}`):\n\n![samples](samples.png)"


def section_copies(ctx: Context) -> str:
    from matplotlib.figure import Figure

    from muselab.evaluate.features import PixelFeatures
    from muselab.evaluate.memorisation import DEFAULT_THRESHOLD, contact_sheet, find_copies
    from muselab.image.io import save_png

    threshold = DEFAULT_THRESHOLD
    rep = find_copies(ctx.generated, ctx.train, PixelFeatures(), threshold=threshold)
    save_png(ctx.out / "copies.png", contact_sheet(rep, ctx.generated, ctx.train, top=16),
             {"threshold": threshold, "run": ctx.run.name})
    fig = Figure(figsize=(5, 2.8))
    ax = fig.add_subplot()
    ax.hist([m.pixel_ratio for m in rep.matches], bins=30, alpha=0.7)
    ax.axvline(threshold, color="red", ls="--", label=f"threshold {threshold}")
    ax.set_xlabel("NN distance / train-to-train NN distance (pixels)")
    ax.set_ylabel("generated images")
    ax.legend(fontsize=7)
    save_figure(fig, ctx.out / "copy-ratios.png")
    return (f"{len(rep.flagged)} of {len(rep.matches)} generated images have a copy ratio "
            f"under {threshold} (possible copies). Training-set scale: median "
            f"train-to-train NN distance {rep.pixel_scale:.3g} (pixels in [0, 1]). "
            "Each cell: generated | nearest training image (pixels) | (features); "
            "ratios in the caption, red when flagged.\n\n"
            "![copy ratios](copy-ratios.png)\n\n![closest pairs](copies.png)")


def section_aesthetics(ctx: Context) -> str:
    try:
        from muselab.evaluate.aesthetics import aesthetic_scores
    except ImportError:
        return "Skipped: `muselab.evaluate.aesthetics` is not available."
    from matplotlib.figure import Figure

    rng = np.random.default_rng(ctx.seed)
    n = min(len(ctx.generated), len(ctx.train))
    train = ctx.train[np.sort(rng.choice(len(ctx.train), n, replace=False))]
    gen_s, train_s = aesthetic_scores(ctx.generated), aesthetic_scores(train)
    names = list(gen_s)
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig = Figure(figsize=(9, 2.4 * rows))
    lines = ["| measure | generated mean | training mean |", "|---|---|---|"]
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        g, t = np.asarray(gen_s[name], float), np.asarray(train_s[name], float)
        bins = np.histogram_bin_edges(np.concatenate([g, t]), bins=20).tolist()
        ax.hist(t, bins=bins, alpha=0.5, label="training", density=True)
        ax.hist(g, bins=bins, alpha=0.5, label="generated", density=True)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        lines.append(f"| {name} | {g.mean():.4g} | {t.mean():.4g} |")
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, ctx.out / "aesthetics.png")
    return (f"{len(ctx.generated)} generated vs {n} training images (formulas: "
            "docs/aesthetics.md).\n\n![aesthetics](aesthetics.png)\n\n" + "\n".join(lines))


def section_value(ctx: Context) -> str:
    if ctx.value_model is None:
        return ("No value model given (`--value-model DIR`, trained by `muselab rate`).")
    from matplotlib.figure import Figure

    from muselab.evaluate.value import ValueModel

    model = ValueModel.load(ctx.value_model)
    parts = [f"Model `{ctx.value_model}`: {model.report.summary() if model.report else '-'}"]
    fig = Figure(figsize=(9, 3))
    ax = fig.add_subplot(1, 2, 1)
    for name, images in (("training", ctx.train[: len(ctx.generated)]),
                         ("generated", ctx.generated)):
        ax.hist(model.predict(images).score, bins=20, range=(0, 1), alpha=0.5, label=name)
    ax.set_xlabel("predicted value (P(high) + P(medium) / 2)")
    ax.legend(fontsize=7)
    history = ctx.value_model / "history.jsonl"
    rows = [json.loads(x) for x in history.read_text().splitlines()] if history.is_file() else []
    rows = [r for r in rows if r.get("heldout")]
    ax2 = fig.add_subplot(1, 2, 2)
    for key in ("accuracy", "spearman", "ece_before", "ece_after"):
        if rows and key in rows[0]["heldout"]:
            ax2.plot([r["n"] for r in rows], [r["heldout"][key] for r in rows], marker="o",
                     label=key)
    ax2.set_xlabel("ratings")
    ax2.set_title("held-out figures and calibration error (ECE)", fontsize=9)
    ax2.legend(fontsize=7)
    save_figure(fig, ctx.out / "value.png")
    parts.append("![value model](value.png)")
    return "\n\n".join(parts)


SECTIONS: list[tuple[str, Callable[[Context], str]]] = [
    ("Run", section_run),
    ("Latest scores", section_scores),
    ("Metrics over training", section_curves),
    ("Samples", section_samples),
    ("Memorisation check", section_copies),
    ("Computational aesthetics", section_aesthetics),
    ("Value model", section_value),
]


# --------------------------------------------------------------------------- page


def render_html(markdown_text: str, title: str) -> str:
    """The page as standalone HTML (python-markdown with tables)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
             "img{max-width:100%}")
    return (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n{body}\n</body></html>\n")


def write_report(
    run: Path, out_dir: Path | None = None, *, n: int = 128, seed: int = 0,
    device: str = "auto", value_model: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (default folder ``run/report``)."""
    from muselab.evaluate.sources import generate, run_config, training_set

    out = ensure_dir(out_dir or run / "report", "report folder")
    config = run_config(run)
    res = int(config["data_info"]["resolution"])
    generated = generate(run, n, seed, device=device).images
    ctx = Context(run, out, config, read_metrics(run), generated,
                  training_set(run, res).images, seed, value_model)
    parts = [f"# muselab report: {run.name}"]
    for title, fn in SECTIONS:
        try:
            body = fn(ctx)
        except (MuselabError, ImportError, KeyError, OSError, ValueError) as exc:
            body = f"Skipped: {type(exc).__name__}: {exc}"
            log.warning("report section %r skipped: %s", title, exc)
        parts.append(f"## {title}\n\n{body}")
    text = "\n\n".join(parts) + "\n"
    md, page = out / "report.md", out / "report.html"
    with atomic_open(md, "w") as fh:
        fh.write(text)
    with atomic_open(page, "w") as fh:
        fh.write(render_html(text, f"muselab report: {run.name}"))
    return md, page
