"""Hyperparameter search with Optuna (Akiba et al. 2019) over the one Trainer.

A *study* lives in one folder: ``study.db`` (Optuna's SQLite storage, so a stopped
study resumes where it stopped), ``runs/`` (one training run per trial), and, after
every trial, ``best.json`` (a ready config for ``muselab train --config``) and
``report.md`` (trials, best against the recipe's defaults, parameter importances,
optimisation history plot).

* Sampler: TPE (Bergstra et al. 2011, "Algorithms for Hyper-Parameter Optimization").
* Pruner: median stopping rule (Golovin et al. 2017, "Google Vizier"), fed by the
  Trainer's metric callback (``swd`` for images, ``val_loss`` for token corpora) at
  every ``train.metric_every`` steps.
* Budget: each trial trains for ``budget_min / trials`` minutes of this process's CPU
  time (``time.process_time``, fair on a shared machine; SWD checks included); the
  whole study stops after ``trials`` finished trials.
* Trial 0 is the recipe's default config, so the report compares the best trial with
  the defaults at the same budget.

Search spaces live in :mod:`muselab.train.search_space`, the written outputs in
:mod:`muselab.train.tune_report`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from muselab.config import check_range
from muselab.errors import ConfigError
from muselab.io import ensure_dir, write_json
from muselab.train.callbacks import Callback
from muselab.train.search_space import Param, config_tree, get_path, set_path, space_for

if TYPE_CHECKING:
    import optuna

    from muselab.train.run import RunConfig
    from muselab.train.trainer import Trainer

# -- metrics and budget -------------------------------------------------------------------------


def metric_names(source: str) -> tuple[str, ...]:
    """The metrics a run on ``source`` records (what ``--metric`` may name)."""
    from muselab.train import lm
    from muselab.train.callbacks import SWDMetric

    return (lm.ValLoss.name,) if lm.is_token_source(source) else (SWDMetric.name,)


def check_metric(metric: str, source: str) -> None:
    valid = metric_names(source)
    if metric not in valid:
        raise ConfigError(f"--metric {metric!r}: runs on {source!r} record "
                          f"{', '.join(valid)}; choose one of them")


class TrialMonitor(Callback):
    """Reports each new metric value to Optuna, prunes, and stops at the CPU budget."""

    order = 15  # after the metric callbacks (10), before checkpoints (30)

    def __init__(self, trial: optuna.Trial, metric: str, cpu_seconds: float) -> None:
        self.trial, self.metric, self.cpu_seconds = trial, metric, cpu_seconds
        self.pruned = False
        self._t0 = time.process_time()

    def cpu_used(self) -> float:
        return time.process_time() - self._t0

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        if trainer.metric_steps.get(self.metric) == trainer.step:
            self.trial.report(trainer.metrics[self.metric], trainer.step)
            if self.trial.should_prune():
                self.pruned = trainer.out_of_time = True
        if self.cpu_used() > self.cpu_seconds:
            trainer.out_of_time = True  # the Trainer saves and stops after this step


# -- the study ----------------------------------------------------------------------------------


@dataclass
class TuneConfig:
    """One study: what to tune, on what, for how long, judged by which metric."""

    model: str
    study_dir: Path
    trials: int = 20
    budget_min: float = 30.0  # CPU minutes of training for the whole study
    metric: str = "swd"
    seed: int = 0
    prune: bool = True
    metric_every: int = 25  # steps between the metric values the pruner sees
    base: dict[str, Any] = field(default_factory=dict)  # config-file shape: data, train, ...

    def __post_init__(self) -> None:
        check_range("--trials", self.trials, 1, 10_000)
        check_range("--budget-min", self.budget_min, 0.01)
        check_range("--metric-every", self.metric_every, 1)

    @property
    def trial_cpu_s(self) -> float:
        return 60.0 * self.budget_min / self.trials


#: Train settings of every trial: quiet, cheap to keep, measured at a fixed cadence.
TRIAL_TRAIN = {"progress": False, "tensorboard": False, "sample_every": 0, "keep_last": 1,
               "checkpoint_every": 0, "steps": 1_000_000, "threads": 1}


def base_config(tc: TuneConfig) -> RunConfig:
    """The recipe's resolved config with the study's base overrides (trial 0)."""
    from muselab.train.run import merge, resolve_config

    steps = tc.base.get("train", {}).get("steps", TRIAL_TRAIN["steps"])  # a cap, if given
    train = {**TRIAL_TRAIN, "metric_every": tc.metric_every, "steps": steps}
    return resolve_config(tc.model, overrides=merge(tc.base, {"train": train}))


def trial_config(tc: TuneConfig, values: Mapping[str, Any]) -> RunConfig:
    """The base config with the trial's ``values`` at their dotted paths."""
    from muselab.train.run import resolve_config

    base = base_config(tc)
    tree = config_tree(base)
    for path, value in values.items():
        set_path(tree, path, value)
    cfg: RunConfig = resolve_config(overrides=tree)
    return cfg


def open_study(tc: TuneConfig) -> optuna.Study:
    """Create or reopen the study in ``tc.study_dir/study.db``."""
    import optuna

    ensure_dir(tc.study_dir, "study directory")
    storage = optuna.storages.RDBStorage(f"sqlite:///{tc.study_dir / 'study.db'}")
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        if tc.prune else optuna.pruners.NopPruner())
    study = optuna.create_study(
        study_name=f"{tc.model}", storage=storage, direction="minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=tc.seed, n_startup_trials=5), pruner=pruner)
    saved = study.user_attrs.get("metric")
    if saved is not None and saved != tc.metric:
        raise ConfigError(f"study {tc.study_dir} optimises {saved!r}; --metric {tc.metric!r} "
                          "needs a new --out folder")
    study.set_user_attr("metric", tc.metric)
    return study


def _queue_defaults_and_retries(study: optuna.Study, space: tuple[Param, ...],
                                base: RunConfig) -> None:
    """Trial 0: the recipe defaults. Trials stopped by Ctrl-C / a crash are run again."""
    import optuna

    if not study.trials:
        tree = config_tree(base)
        defaults = {p.path: get_path(tree, p.path) for p in space}
        study.enqueue_trial(defaults, user_attrs={"default": True})
        return
    retried = {t.user_attrs.get("retry_of") for t in study.trials}
    for t in study.trials:
        stale = t.state in (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
        if stale and t.number not in retried:
            if t.state == optuna.trial.TrialState.RUNNING:  # its process died
                study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number,
                                                      **{k: v for k, v in t.user_attrs.items()
                                                         if k == "default"}})


def finished(study: optuna.Study) -> int:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(t.state in done for t in study.trials)


class Interrupted(Exception):
    """Ctrl-C reached a trial's Trainer: the study stops (and resumes next time)."""


def objective(tc: TuneConfig, space: tuple[Param, ...],
              extra_callbacks: Callable[[], list[Callback]] | None = None
              ) -> Callable[[optuna.Trial], float]:
    import optuna

    from muselab.train.run import start_run

    def run_trial(trial: optuna.Trial) -> float:
        values = {p.path: p.suggest(trial) for p in space}
        cfg = trial_config(tc, values)
        trainer = start_run(cfg, tc.study_dir / "runs")
        monitor = TrialMonitor(trial, tc.metric, tc.trial_cpu_s)
        trainer.callbacks = sorted([*trainer.callbacks, monitor, *(extra_callbacks or list)()],
                                   key=lambda c: c.order)
        trial.set_user_attr("run", trainer.run_dir.name)
        result = trainer.fit()
        trial.set_user_attr("steps", result.step)
        trial.set_user_attr("cpu_s", round(monitor.cpu_used(), 1))
        trial.set_user_attr("images", result.step * cfg.train.batch_size)
        if monitor.pruned:
            raise optuna.TrialPruned()
        if result.interrupted:
            raise Interrupted(f"trial {trial.number} interrupted at step {result.step}")
        if tc.metric not in result.metrics:
            raise ConfigError(f"trial {trial.number} recorded no {tc.metric!r}")
        return float(result.metrics[tc.metric])

    return run_trial


@dataclass
class TuneResult:
    study_dir: Path
    finished: int
    best_value: float | None
    default_value: float | None
    best_config: Path | None
    report: Path
    trials_per_hour: float
    interrupted: bool = False


def tune(tc: TuneConfig, on_trial: Callable[[int, int, str], None] | None = None,
         extra_callbacks: Callable[[], list[Callback]] | None = None,
         should_stop: Callable[[], bool] | None = None) -> TuneResult:
    """Run (or resume) the study until ``tc.trials`` trials finished; write best + report.

    ``on_trial(done, total, line)`` is called after every trial (progress);
    ``should_stop()`` is polled between trials (a cancelled job).
    """
    import optuna

    from muselab.train.tune_report import write_outputs

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our report says what failed
    base = base_config(tc)
    check_metric(tc.metric, base.data.source)
    space = space_for(base)
    _check_same_study(tc)
    study = open_study(tc)
    write_json(tc.study_dir / "tune.json", {**_tune_json(tc), "space": [p.path for p in space]})
    _queue_defaults_and_retries(study, space, base)
    run_trial = objective(tc, space, extra_callbacks)
    stopped = False
    while finished(study) < tc.trials and not stopped:
        try:
            study.optimize(run_trial, n_trials=1, catch=())
        except (Interrupted, KeyboardInterrupt):  # the trial is FAIL: retried on resume
            stopped = True
        finally:
            write_outputs(tc, study)
        if on_trial:
            on_trial(finished(study), tc.trials, _trial_line(study.trials[-1]))
        stopped = stopped or bool(should_stop and should_stop())
    return dataclasses.replace(write_outputs(tc, study), interrupted=stopped)


def _check_same_study(tc: TuneConfig) -> None:
    """A resumed study keeps what makes its trials comparable (more trials are fine)."""
    path = tc.study_dir / "tune.json"
    if not path.is_file():
        return
    saved, now = json.loads(path.read_text()), json.loads(json.dumps(_tune_json(tc)))
    saved_cpu = 60.0 * saved["budget_min"] / saved["trials"]
    for key in ("model", "metric", "metric_every", "base"):
        if saved.get(key) != now[key]:
            raise ConfigError(f"study {tc.study_dir} was started with another {key} "
                              f"({saved.get(key)!r}); use a new --out folder")
    if not math.isclose(saved_cpu, tc.trial_cpu_s, rel_tol=1e-6):
        raise ConfigError(f"study {tc.study_dir} gives each trial {saved_cpu:.0f} CPU-s; keep "
                          f"--budget-min / --trials at that ratio "
                          f"(e.g. --budget-min {saved_cpu * tc.trials / 60:g})")


def _tune_json(tc: TuneConfig) -> dict[str, Any]:
    d = dataclasses.asdict(tc)
    d["study_dir"] = str(tc.study_dir)
    return d


def _trial_line(t: optuna.trial.FrozenTrial) -> str:
    value = "-" if t.value is None else f"{t.value:.2f}"
    return (f"trial {t.number} {t.state.name.lower()} value={value} "
            f"steps={t.user_attrs.get('steps', '-')}")
