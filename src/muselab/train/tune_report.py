"""The outputs of a ``muselab tune`` study: ``best.json`` and ``report.md`` with plots."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muselab.config import to_dict
from muselab.io import atomic_open, write_json
from muselab.train.search_space import config_tree
from muselab.train.tune import TRIAL_TRAIN, TuneConfig, TuneResult, finished, trial_config

if TYPE_CHECKING:
    import optuna


def write_outputs(tc: TuneConfig, study: optuna.Study) -> TuneResult:
    """``best.json`` (a ready config) and ``report.md`` (+ PNG plots) of the study so far."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value or math.inf) if complete else None
    defaults = [t for t in complete if t.user_attrs.get("default")]
    best_path = None
    if best is not None:
        best_path = tc.study_dir / "best.json"
        write_json(best_path, best_config(tc, best))
    plots = _plots(tc.study_dir, study, len(complete))
    rate = trials_per_hour(study)
    report = tc.study_dir / "report.md"
    with atomic_open(report, "w") as fh:
        fh.write(render_report(tc, study, best, defaults[0] if defaults else None, plots, rate))
    return TuneResult(tc.study_dir, finished(study), best.value if best else None,
                      defaults[0].value if defaults else None, best_path, report, rate)


def best_config(tc: TuneConfig, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The trial's resolved config, ready for ``muselab train --config``.

    ``train.steps`` is the number of steps the trial reached in its budget; the
    study-only settings (quiet, one thread, no checkpoints) are reset to the defaults.
    """
    from muselab.train.trainer import TrainConfig

    tree = config_tree(trial_config(tc, trial.params))
    defaults = to_dict(TrainConfig())
    for key in [*TRIAL_TRAIN, "metric_every"]:
        tree["train"][key] = defaults[key]
    tree["train"]["steps"] = int(trial.user_attrs.get("steps", defaults["steps"]))
    return tree


def trials_per_hour(study: optuna.Study) -> float:
    """Finished (complete or pruned) trials per hour of wall time spent in any trial."""
    spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials
             if t.datetime_complete is not None and t.datetime_start is not None]
    total = sum(spans)
    return 3600.0 * finished(study) / total if total > 0 else 0.0


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances (Hutter et al. 2014) over the completed trials (empty if < 3)."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):  # e.g. every trial with the same values
        return {}


def _plots(study_dir: Path, study: optuna.Study, n_complete: int) -> dict[str, str]:
    """History and importance plots as PNG (matplotlib, no plotly)."""
    if n_complete < 1:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("history.png", lambda: ovm.plot_optimization_history(study))]
        if importances(study):
            jobs.append(("importance.png", lambda: ovm.plot_param_importances(study)))
        for name, plot in jobs:
            ax = plot()
            fig = ax.figure
            fig.set_size_inches(7, 4)
            fig.tight_layout()
            with atomic_open(study_dir / name, "wb") as fh:
                fig.savefig(fh, format="png", dpi=100)
            plt.close(fig)
            out[name] = name
    return out


def render_report(tc: TuneConfig, study: optuna.Study, best: optuna.trial.FrozenTrial | None,
                  default: optuna.trial.FrozenTrial | None, plots: dict[str, str],
                  rate: float) -> str:
    """The study as Markdown."""
    lines = [f"# Tuning {tc.model} ({tc.metric}, lower is better)", "",
             f"- study: `{tc.study_dir}` ({len(study.trials)} trials, "
             f"{finished(study)}/{tc.trials} finished)",
             f"- budget: {tc.budget_min:g} CPU-min in all, {tc.trial_cpu_s:.0f} CPU-s per trial",
             f"- sampler: TPE (seed {tc.seed}); pruner: "
             f"{'median' if tc.prune else 'none'}; trials/hour: {rate:.1f}", ""]
    if best is not None:
        lines += [f"**Best: trial {best.number}, {tc.metric} = {best.value:.3f}**"
                  + (f" against the defaults' {default.value:.3f} (trial {default.number}, "
                     "same budget)" if default is not None and default.value is not None else ""),
                  "", "Ready config: `best.json` (`muselab train --config best.json`).", "",
                  "| parameter | best | default |", "|---|---|---|"]
        for k, v in best.params.items():
            d = default.params.get(k, "-") if default is not None else "-"
            lines.append(f"| {k} | {_fmt(v)} | {_fmt(d)} |")
        lines.append("")
    imp = importances(study)
    if imp:
        lines += ["## Parameter importances (fANOVA)", "", "| parameter | importance |",
                  "|---|---|", *[f"| {k} | {v:.3f} |" for k, v in imp.items()], ""]
    for name in plots:
        lines += [f"![{name}]({name})", ""]
    lines += ["## Trials", "", f"| # | state | {tc.metric} | steps | images | CPU s | params |",
              "|---|---|---|---|---|---|---|"]
    for t in study.trials:
        value = "-" if t.value is None else f"{t.value:.3f}"
        params = ", ".join(f"{k.split('.', 1)[1]}={_fmt(v)}" for k, v in t.params.items())
        tag = " (default)" if t.user_attrs.get("default") else ""
        lines.append(f"| {t.number}{tag} | {t.state.name.lower()} | {value} | "
                     f"{t.user_attrs.get('steps', '-')} | {t.user_attrs.get('images', '-')} | "
                     f"{t.user_attrs.get('cpu_s', '-')} | {params} |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return json.dumps(v) if isinstance(v, str) else str(v)
