"""``muselab tune``: hyperparameter search with Optuna (:mod:`muselab.train.tune`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muselab.commands import err, out, user_errors


def register(app: typer.Typer) -> None:
    """Add ``muselab tune`` to the root app."""
    app.command()(tune)


@user_errors
def tune(
    model: Annotated[str, typer.Argument(help="Recipe to tune (muselab models).")],
    data: Annotated[str | None, typer.Option(help="Built-in data set or image folder.")] = None,
    res: Annotated[int | None, typer.Option(help="Training resolution.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    trials: Annotated[int, typer.Option(help="Finished trials to reach.", min=1)] = 20,
    budget_min: Annotated[float, typer.Option(help="CPU minutes of training for the whole "
                                              "study (split evenly over the trials).")] = 30.0,
    metric: Annotated[str, typer.Option(help="Metric to minimise (swd for images, val_loss "
                                        "for token corpora).")] = "swd",
    metric_every: Annotated[int, typer.Option(help="Steps between metric checks (pruning).",
                                              min=1)] = 25,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every trial.")] = 0,
    prune: Annotated[bool, typer.Option(help="Median pruning of poor trials.")] = True,
    config: Annotated[Path | None, typer.Option(help="Base .toml/.json config.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Base override "
                                                   "section.key=value.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Study folder (default "
                                                 "runs/tune-MODEL-DATA; rerun to resume).")] = None,
) -> None:
    """Search a recipe's hyperparameters (TPE + median pruning); resumable, with a report."""
    from muselab.cli import parse_sets
    from muselab.config import load_file
    from muselab.data.imagefolder import make_progress
    from muselab.train.run import merge
    from muselab.train.rundir import runs_root
    from muselab.train.tune import TuneConfig
    from muselab.train.tune import tune as run_study

    base: dict[str, Any] = merge(load_file(config) if config else {}, parse_sets(set_ or []))
    data_cli = {k: v for k, v in {"source": data, "resolution": res, "limit": limit}.items()
                if v is not None}
    base = merge(base, {"data": data_cli, "train": {"seed": seed}})
    source = str(base.get("data", {}).get("source", "emoji"))
    study_dir = out_dir or runs_root() / f"tune-{model}-{Path(source).name}"
    tc = TuneConfig(model=model, study_dir=study_dir, trials=trials, budget_min=budget_min,
                    metric=metric, seed=seed, prune=prune, metric_every=metric_every, base=base)
    err.print(f"study: {study_dir} ({trials} trials, {tc.trial_cpu_s:.0f} CPU-s each)")
    with make_progress(True) as bar:
        task = bar.add_task("trials", total=trials)

        def on_trial(done: int, total: int, line: str) -> None:
            bar.update(task, completed=done, description=f"trials ({line})")

        result = run_study(tc, on_trial=on_trial)
    if result.finished < trials:
        err.print(f"stopped after {result.finished}/{trials} trials; rerun the same command "
                  "to resume")
    best = "-" if result.best_value is None else f"{result.best_value:.3f}"
    default = "-" if result.default_value is None else f"{result.default_value:.3f}"
    out.print(f"best {metric} {best} (defaults {default}); {result.trials_per_hour:.1f} "
              f"trials/hour; report {result.report}"
              + (f"; config {result.best_config}" if result.best_config else ""))
    if result.interrupted:
        raise typer.Exit(130)
