"""Job kind ``train``: train (or continue) a model run with live progress.

The run directory is saved in the job's state as soon as it exists, so a job interrupted
by a restart resumes from the run's last checkpoint, exactly (muselab.train.run.resume_run).
Cancelling stops after the current step and saves a checkpoint; ``resume`` continues it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from torch import Tensor

from muselab.errors import ConfigError
from muselab.store.gallery import NotFoundError
from muselab.studio.context import JobContext
from muselab.studio.registry import register_job
from muselab.studio.settings import Settings
from muselab.train.callbacks import Callback

#: Settings the studio forces: the worker has no terminal and the page shows progress.
QUIET = {"progress": False, "tensorboard": False}


class RecipeOnData(BaseModel):
    """What a training or tuning job trains: a recipe on a data set at a resolution."""

    model: str = Field(default="dcgan", description="Training recipe (GET /api/train/recipes).")
    data: str = Field(default="emoji",
                      description="Built-in data set, or 'upload:ID' of an upload.")
    resolution: int = Field(default=32, description="Training resolution: 8, 16, 32, 64 or 128.")


class TrainParams(RecipeOnData):
    steps: int = Field(default=2000, ge=1, le=10_000_000, description="Total optimisation steps.")
    batch_size: int | None = Field(default=None, ge=1, le=65536)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    limit: int | None = Field(default=None, ge=1, description="Use only the first N images.")
    max_minutes: float = Field(default=0.0, ge=0, description="Wall-clock budget (0 = none).")
    recipe: dict[str, Any] = Field(default_factory=dict,
                                   description="model_config overrides, e.g. {'net': {...}}.")
    train: dict[str, Any] = Field(default_factory=dict,
                                  description="More train.* overrides (cadences etc.).")
    resume: str | None = Field(default=None, description="Continue this run id to `steps` instead.")


def data_source(settings: Settings, data: str) -> str:
    """A built-in set name, or the folder of an upload (``upload:ID``)."""
    if not data.startswith("upload:"):
        return data
    upload = data.removeprefix("upload:")
    path = settings.uploads_dir() / upload
    if not upload.isalnum() or not path.is_dir():
        raise NotFoundError(f"data {data!r}: no such upload; POST /api/train/uploads first")
    return str(path)


def run_config(settings: Settings, p: TrainParams) -> Any:
    """The checked RunConfig of a new run (ConfigError naming the bad value)."""
    from muselab.train.run import resolve_config

    train = {**p.train, "seed": p.seed, "steps": p.steps, "max_minutes": p.max_minutes, **QUIET}
    if p.batch_size is not None:
        train["batch_size"] = p.batch_size
    data: dict[str, Any] = {"source": data_source(settings, p.data), "resolution": p.resolution}
    if p.limit is not None:
        data["limit"] = p.limit
    return resolve_config(p.model, overrides={"model_config": p.recipe, "data": data,
                                              "train": train})


def run_dir_of(settings: Settings, run: str) -> Path:
    from muselab.train.rundir import find_run

    if "/" in run or "\\" in run or run in ("", ".", ".."):
        raise NotFoundError(f"run {run!r} does not exist")
    try:
        return find_run(run, settings.runs)
    except Exception:
        raise NotFoundError(f"run {run!r} does not exist under {settings.runs}; "
                            "GET /api/train/runs lists them") from None


def latest_step(run_dir: Path) -> int:
    """Step of the run's latest complete checkpoint (-1: none)."""
    from muselab.train import checkpoint as ck

    done = [p for p in sorted((run_dir / "checkpoints").glob("step-*"))
            if (p / ck.STATE_FILE).is_file()]
    return int(done[-1].name.removeprefix("step-")) if done else -1


def prepare(settings: Settings, p: TrainParams) -> str | None:
    """Checks at submit time; the job's key (the run) so one run never trains twice."""
    if p.resume is None:
        run_config(settings, p)
        return None
    run_dir = run_dir_of(settings, p.resume)
    step = latest_step(run_dir)
    if step < 0:
        raise ConfigError(f"run {run_dir.name} has no checkpoint to resume from")
    if p.steps <= step:
        raise ConfigError(f"run {run_dir.name} is already at step {step}; "
                          f"ask for more than {step} steps to train further")
    return f"run:{run_dir.name}"


class JobProgress(Callback):
    """Pushes step, losses and ETA to the job row; stops the trainer on cancel/shutdown."""

    order = 95

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self._last_log = 0.0

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        losses = " ".join(f"{k}={v:.3f}" for k, v in trainer.latest_losses.items())
        if self.ctx.progress(trainer.step, trainer.cfg.steps, f"step {trainer.step} {losses}"):
            trainer.stop_requested = True
        now = time.monotonic()
        if now - self._last_log > 5 or trainer.step == trainer.cfg.steps:
            self.ctx.log(f"step {trainer.step}/{trainer.cfg.steps} {losses}".rstrip())
            self._last_log = now


@register_job("train", TrainParams, description="Train or continue a model run.",
              prepare=prepare)
def train(ctx: JobContext, p: TrainParams) -> dict[str, Any]:
    from muselab.train.run import resume_run, start_run

    settings = ctx.settings
    saved = ctx.state.get("run_dir") or (str(run_dir_of(settings, p.resume)) if p.resume else None)
    run_dir = Path(saved) if saved else None
    if run_dir is not None and latest_step(run_dir) >= p.steps:
        ctx.log(f"{run_dir.name} already reached step {latest_step(run_dir)}")
        return {"run": run_dir.name, "step": latest_step(run_dir), "metrics": {}}
    if run_dir is not None and latest_step(run_dir) >= 0:
        trainer = resume_run(run_dir, steps=p.steps, train_overrides=QUIET)
        ctx.log(f"resumed {run_dir.name} from its checkpoint at step {trainer.step}")
    else:
        trainer = start_run(run_config(settings, p), settings.runs)
        ctx.save_state(run_dir=str(trainer.run_dir), key=f"run:{trainer.run_dir.name}")
        ctx.log(f"started {trainer.run_dir.name}: {p.model} on {p.data} at {p.resolution} px, "
                f"{p.steps} steps")
    cb = JobProgress(ctx)
    cb.setup(trainer)
    trainer.callbacks.append(cb)
    ctx.progress(trainer.step, trainer.cfg.steps, "training", force=True)
    result = trainer.fit()
    if result.interrupted and not ctx.cancelled:  # Ctrl-C reached the trainer: pause the job
        ctx.shutdown.set()
    swd = f", swd {result.metrics['swd']:.2f}" if "swd" in result.metrics else ""
    ctx.log(f"{'stopped' if result.interrupted else 'finished'} at step {result.step}{swd}")
    return {"run": trainer.run_dir.name, "step": result.step, "metrics": result.metrics,
            "seconds": result.seconds}
