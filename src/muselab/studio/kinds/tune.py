"""Job kind ``tune``: an Optuna hyperparameter study (:mod:`muselab.train.tune`) as a job.

The study folder is saved in the job's state as soon as it is chosen, so a job stopped by
a cancel or a restart resumes the same study (Optuna's SQLite storage) when run again.
Progress counts finished trials; a cancel stops the running trial after its current step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from torch import Tensor

from muselab.studio.context import JobContext
from muselab.studio.kinds.train import QUIET, RecipeOnData, data_source
from muselab.studio.registry import register_job
from muselab.studio.settings import Settings
from muselab.train.callbacks import Callback


class TuneParams(RecipeOnData):
    trials: int = Field(default=20, ge=1, le=10_000, description="Finished trials to reach.")
    budget_min: float = Field(default=30.0, gt=0, le=100_000,
                              description="CPU minutes of training for the whole study.")
    metric: str = Field(default="swd", description="Metric to minimise (swd, val_loss).")
    metric_every: int = Field(default=25, ge=1, description="Steps between metric checks.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    limit: int | None = Field(default=None, ge=1, description="Use only the first N images.")
    prune: bool = Field(default=True, description="Median pruning of poor trials.")
    recipe: dict[str, Any] = Field(default_factory=dict, description="Base model_config.")
    train: dict[str, Any] = Field(default_factory=dict, description="Base train.* settings.")


def tune_config(settings: Settings, p: TuneParams, study_dir: Path) -> Any:
    """The checked TuneConfig of the job (ConfigError naming the bad value)."""
    from muselab.train.search_space import space_for
    from muselab.train.tune import TuneConfig, base_config, check_metric

    data: dict[str, Any] = {"source": data_source(settings, p.data), "resolution": p.resolution}
    if p.limit is not None:
        data["limit"] = p.limit
    base = {"model_config": p.recipe, "data": data,
            "train": {**p.train, "seed": p.seed, **QUIET}}
    tc = TuneConfig(model=p.model, study_dir=study_dir, trials=p.trials,
                    budget_min=p.budget_min, metric=p.metric, seed=p.seed, prune=p.prune,
                    metric_every=p.metric_every, base=base)
    cfg = base_config(tc)
    check_metric(tc.metric, cfg.data.source)
    space_for(cfg)
    return tc


def prepare(settings: Settings, p: TuneParams) -> str | None:
    """Checks at submit time (model, data, metric, search space)."""
    tune_config(settings, p, settings.runs / "tune-check")
    return None


class StopOnCancel(Callback):
    """Keeps the job's progress alive during a trial; stops the trial on cancel/shutdown."""

    order = 95

    def __init__(self, ctx: JobContext, done: int, total: int) -> None:
        self.ctx, self.done, self.total = ctx, done, total

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        if self.ctx.progress(self.done, self.total, f"trial {trainer.run_dir.name}: "
                             f"step {trainer.step}"):
            trainer.stop_requested = True


@register_job("tune", TuneParams, description="Search a recipe's hyperparameters (Optuna).",
              prepare=prepare)
def tune(ctx: JobContext, p: TuneParams) -> dict[str, Any]:
    from muselab.train.tune import finished, open_study
    from muselab.train.tune import tune as run_study

    saved = ctx.state.get("study_dir")
    study_dir = Path(saved) if saved else ctx.settings.runs / f"tune-{p.model}-job{ctx.job_id}"
    if not saved:
        ctx.save_state(study_dir=str(study_dir), key=f"study:{study_dir.name}")
    tc = tune_config(ctx.settings, p, study_dir)
    done = finished(open_study(tc))
    ctx.log(f"{'resuming' if done else 'starting'} study {study_dir.name}: {p.model} on "
            f"{p.data}, {done}/{p.trials} trials done")
    ctx.progress(done, p.trials, "tuning", force=True)
    progress = {"done": done}

    def on_trial(n: int, total: int, line: str) -> None:
        progress["done"] = n
        ctx.log(line)
        ctx.progress(n, total, line, force=True)

    result = run_study(tc, on_trial=on_trial, should_stop=ctx.should_stop,
                       extra_callbacks=lambda: [StopOnCancel(ctx, progress["done"], p.trials)])
    ctx.log(f"{result.finished}/{p.trials} trials; best {p.metric} {result.best_value} "
            f"(defaults {result.default_value}); report {result.report.name}")
    return {"study": study_dir.name, "finished": result.finished, "best": result.best_value,
            "default": result.default_value, "trials_per_hour": result.trials_per_hour,
            "best_config": str(result.best_config) if result.best_config else None}
