"""Hyperparameter search (muselab.train.tune): tiny studies on the offline digits set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from muselab.config import load_file
from muselab.errors import ConfigError
from muselab.train.callbacks import Callback
from muselab.train.run import resolve_config
from muselab.train.search_space import space_for
from muselab.train.tune import (
    TrialMonitor,
    TuneConfig,
    base_config,
    check_metric,
    tune,
)
from muselab.train.tune_report import best_config
from tests.tiny import tiny_overrides


def tiny_study(study_dir: Path, trials: int) -> TuneConfig:
    """hinge-gan with tiny nets, 6 steps per trial (CPU budget generous: steps decide)."""
    base = tiny_overrides(steps=6)
    base["train"].update(metric_n=32, batch_size=16)
    return TuneConfig(model="hinge-gan", study_dir=study_dir, trials=trials, budget_min=trials,
                      metric="swd", metric_every=2, seed=1, base=base)


class StopAt(Callback):
    """Ctrl-C stand-in: ask the trainer to stop at ``step`` (first trial only)."""

    def __init__(self, step: int, fired: list[int]) -> None:
        self.step, self.fired = step, fired

    def on_step_end(self, trainer: Any, logs: Any) -> None:
        if trainer.step == self.step and not self.fired:
            self.fired.append(trainer.step)
            trainer.stop_requested = True


def test_study_stops_resumes_and_writes_a_ready_config(tmp_path: Path, runs: Path) -> None:
    study_dir = tmp_path / "study"
    fired: list[int] = []
    first = tune(tiny_study(study_dir, 3), extra_callbacks=lambda: [StopAt(2, fired)])
    assert fired == [2] and first.finished == 0  # stopped inside trial 0
    result = tune(tiny_study(study_dir, 3))  # resumes: trial 0 again, then two more
    assert result.finished == 3
    study = optuna.load_study(study_name="hinge-gan", storage=f"sqlite:///{study_dir}/study.db")
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.FAIL and len(states) == 4
    retry = study.trials[1]
    assert retry.user_attrs["retry_of"] == 0 and retry.user_attrs["default"]
    assert retry.params == study.trials[0].params
    # trial 0 is the recipe's defaults
    defaults = resolve_config("hinge-gan", overrides=tiny_overrides())
    assert retry.params["model_config.lr_g"] == defaults.model_config.lr_g
    assert retry.params["model_config.augment"] == defaults.model_config.augment
    assert all(t.user_attrs["steps"] == 6 for t in study.trials[1:]
               if t.state == optuna.trial.TrialState.COMPLETE)
    assert result.default_value == retry.value and result.best_value is not None
    assert result.best_value <= result.default_value
    # best.json is a ready config: it resolves, and carries the best trial's values
    assert result.best_config is not None
    best = resolve_config(file=load_file(result.best_config))
    best_trial = min((t for t in study.trials if t.value is not None), key=lambda t: t.value)
    assert best.model == "hinge-gan" and best.train.steps == 6
    assert best.model_config.lr_d == pytest.approx(best_trial.params["model_config.lr_d"])
    assert best.train.batch_size == best_trial.params["train.batch_size"]
    assert best.train.progress and best.train.checkpoint_every == 500  # study-only reset
    report = result.report.read_text()
    assert "Parameter importances" in report and "| 1 (default) | complete |" in report
    for png in ("history.png", "importance.png"):
        assert (study_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.trials_per_hour > 0
    assert json.loads((study_dir / "tune.json").read_text())["metric"] == "swd"


def test_resumed_study_keeps_its_trial_budget(tmp_path: Path, runs: Path) -> None:
    tc = tiny_study(tmp_path / "study", 3)
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "tune.json").write_text(json.dumps(
        {**json.loads(json.dumps(dataclasses.asdict(tc), default=str)), "budget_min": 6}))
    with pytest.raises(ConfigError, match=r"120 CPU-s; keep --budget-min / --trials"):
        tune(tc)
    with pytest.raises(ConfigError, match="another metric_every"):
        tune(dataclasses.replace(tc, budget_min=6, metric_every=3))


def test_monitor_reports_prunes_and_stops_at_budget() -> None:
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=10.0))
    trial = study.ask()
    trainer = SimpleNamespace(step=4, metrics={"swd": 3.0}, metric_steps={"swd": 4},
                              stop_requested=False, out_of_time=False)
    monitor = TrialMonitor(trial, "swd", cpu_seconds=1e9)
    monitor.on_step_end(trainer, {})  # type: ignore[arg-type]
    assert not monitor.pruned and not trainer.out_of_time
    trainer.step, trainer.metrics, trainer.metric_steps = 8, {"swd": 50.0}, {"swd": 8}
    monitor.on_step_end(trainer, {})  # type: ignore[arg-type]
    assert monitor.pruned and trainer.out_of_time
    assert study.trials[0].intermediate_values == {4: 3.0, 8: 50.0}
    broke = SimpleNamespace(step=9, metrics={}, metric_steps={}, out_of_time=False)
    TrialMonitor(study.ask(), "swd", cpu_seconds=0.0).on_step_end(broke, {})  # type: ignore[arg-type]
    assert broke.out_of_time  # CPU budget spent


def test_unknown_metric_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--metric 'fid'.*swd"):
        check_metric("fid", "emoji")
    result = CliRunner().invoke(_app(), ["tune", "dcgan", "--metric", "fid", "--out",
                                         str(tmp_path / "s")])
    assert result.exit_code == 2 and "swd" in result.output and "fid" in result.output


def test_model_without_a_search_space_is_a_clear_error(tmp_path: Path) -> None:
    tc = TuneConfig(model="text-diffusion", study_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"no search space \(tunable: .*dcgan"):
        space_for(base_config(tc))


def test_trial_zero_is_inside_the_space(tmp_path: Path) -> None:
    for model in ("dcgan", "wgan-gp", "vae"):
        tc = TuneConfig(model=model, study_dir=tmp_path)
        cfg = base_config(tc)
        study = optuna.create_study()
        from muselab.train.tune import _queue_defaults_and_retries

        space = space_for(cfg)
        _queue_defaults_and_retries(study, space, cfg)
        trial = study.ask()
        values = {p.path: p.suggest(trial) for p in space}
        assert len(values) == len(space)  # every default is a valid point of the space
        frozen = optuna.trial.create_trial(params=values, distributions=trial.distributions,
                                           value=1.0, user_attrs={"steps": 7})
        ready = best_config(tc, frozen)
        assert ready["train"]["steps"] == 7 and ready["model"] == model


def test_tune_as_a_studio_job(tmp_path: Path, runs: Path) -> None:
    from muselab.store.db import connect
    from muselab.studio.kinds import tune as _kind  # noqa: F401  (registers "tune")
    from muselab.studio.routers.jobs import submit_job
    from muselab.studio.settings import Settings
    from muselab.studio.worker import Worker
    from tests.tiny import TINY_NETS

    settings = Settings(db=tmp_path / "studio.sqlite3", media=tmp_path / "media", runs=runs,
                        models=tmp_path / "models", poll_s=0.05, max_upload_mb=1)
    worker = Worker(settings)
    params = {"model": "hinge-gan", "data": "digits", "limit": 64, "trials": 2,
              "budget_min": 2, "metric_every": 2, "recipe": {"net": TINY_NETS["gan"]},
              "train": {"steps": 4, "batch_size": 16, "metric_n": 32}}
    with pytest.raises(ConfigError, match="metric"):
        submit_job(connect(settings.db_path()), settings, "tune", {**params, "metric": "fid"})
    submit_job(connect(settings.db_path()), settings, "tune", params)
    done = worker.run_once()
    assert done is not None and done.state == "done", done and done.error
    assert done.result["finished"] == 2 and done.result["best"] is not None
    assert Path(done.result["best_config"]).is_file()


def _app() -> Any:
    from muselab.cli import app

    return app
