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
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from muselab.config import check_range, to_dict
from muselab.errors import ConfigError
from muselab.io import atomic_open, ensure_dir, write_json
from muselab.train.callbacks import Callback

if TYPE_CHECKING:
    import optuna

    from muselab.train.run import RunConfig
    from muselab.train.trainer import Trainer

# -- search spaces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One searched setting at a dotted config path (``model_config.lr_g``)."""

    path: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.path, list(self.choices))
        return trial.suggest_float(self.path, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return isinstance(value, int | float) and self.low <= value <= self.high


SpaceFn = Callable[[], tuple[Param, ...]]
_SPACES: dict[type, SpaceFn] = {}


def search_space(config_cls: type) -> Callable[[SpaceFn], SpaceFn]:
    """Register the search space of recipes whose model config is ``config_cls``."""

    def decorate(fn: SpaceFn) -> SpaceFn:
        _SPACES[config_cls] = fn
        return fn

    return decorate


def _register_builtin_spaces() -> None:
    from muselab.image.gan import GANConfig
    from muselab.image.vae import VAERecipe

    @search_space(GANConfig)
    def gan_space() -> tuple[Param, ...]:
        return (
            # Adam step sizes and momentum (Kingma & Ba 2015; Radford 2016 use 2e-4, 0.5).
            Param("model_config.lr_g", 2e-5, 2e-3, log=True),
            Param("model_config.lr_d", 2e-5, 2e-3, log=True),
            Param("model_config.betas.0", 0.0, 0.9),
            Param("train.batch_size", choices=(32, 64, 128)),
            # Generator EMA (Karras 2018; Yazici 2019) and DiffAugment (Zhao 2020).
            Param("train.ema_decay", choices=(0.0, 0.99, 0.999)),
            Param("model_config.augment", choices=("", "color,translation")),
        )

    @search_space(VAERecipe)
    def vae_space() -> tuple[Param, ...]:
        return (
            Param("model_config.lr", 1e-4, 3e-3, log=True),
            Param("model_config.net.beta", 0.1, 2.0, log=True),  # beta-VAE (Higgins 2017)
            Param("train.batch_size", choices=(32, 64, 128)),
        )


def space_for(cfg: RunConfig) -> tuple[Param, ...]:
    """The search space of ``cfg``'s recipe, widened to hold ``cfg``'s own values (so the
    defaults are trial 0); a :class:`ConfigError` if the recipe has none."""
    _register_builtin_spaces()
    tree = _config_tree(cfg)
    for cls, fn in _SPACES.items():
        if isinstance(cfg.model_config, cls):
            return tuple(_widen(p, get_path(tree, p.path)) for p in fn())
    from muselab.models.registry import list_models

    tunable = [s.name for s in list_models() if any(s.config_cls is c for c in _SPACES)]
    raise ConfigError(f"muselab tune: model {cfg.model!r} has no search space "
                      f"(tunable: {', '.join(tunable)})")


def _widen(p: Param, value: Any) -> Param:
    if p.contains(value):
        return p
    if p.choices:
        return dataclasses.replace(p, choices=(*p.choices, value))
    return dataclasses.replace(p, low=min(p.low, value), high=max(p.high, value))


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at ``path`` in a nested dict (list items by index)."""
    *parents, last = path.split(".")
    node: Any = tree
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


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
    tree = _config_tree(base)
    for path, value in values.items():
        set_path(tree, path, value)
    cfg: RunConfig = resolve_config(overrides=tree)
    return cfg


def _config_tree(cfg: RunConfig) -> dict[str, Any]:
    return {"model": cfg.model, "model_config": to_dict(cfg.model_config),
            "data": to_dict(cfg.data), "train": to_dict(cfg.train)}


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
        tree = _config_tree(base)
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


# -- outputs ------------------------------------------------------------------------------------


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

    tree = _config_tree(trial_config(tc, trial.params))
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
