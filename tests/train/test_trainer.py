"""The one Trainer: exact resume, NaN roll-back, Ctrl-C, run directories, checkpoints."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from muselab.errors import ConfigError, MuselabError
from muselab.train.callbacks import Callback
from muselab.train.run import resume_run, start_run
from muselab.train.trainer import Trainer, TrainingDiverged
from tests.tiny import tiny_config


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("model", ["hinge-gan", "wgan-gp", "vae"])
def test_resume_is_exact(runs: Path, model: str) -> None:
    straight = start_run(tiny_config(model, steps=6), runs)
    straight.fit()
    first = start_run(tiny_config(model, steps=3), runs)
    first.fit()
    resumed = resume_run(first.run_dir, steps=6)
    assert resumed.step == 3
    resumed.fit()
    assert_same(weights(straight.run_dir), weights(resumed.run_dir))
    # optimiser state and RNG streams continue exactly too
    s1 = load_file(str(straight.run_dir / "state.safetensors"))
    s2 = load_file(str(resumed.run_dir / "state.safetensors"))
    for k in s1:
        if "elapsed" not in k:
            assert torch.equal(s1[k], s2[k]), k


def test_run_directory_layout(runs: Path) -> None:
    t = start_run(tiny_config(steps=6), runs)
    result = t.fit()
    run = result.run_dir
    assert run.name == "00000-hinge-gan-digits32"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "hinge-gan"
    assert cfg["model_config"]["net"]["resolution"] == 32  # resolved, not the default
    assert cfg["train"]["steps"] == 6 and cfg["data"]["source"] == "digits"
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["step-00000004", "step-00000006"]  # keep_last=2
    assert (run / "best" / "model.safetensors").is_file()
    assert {"G.", "D.", "G_ema."} <= {k.split(".")[0] + "." for k in weights(run)}
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 3, 6]
    assert all(m["value"] > 0 for m in metrics)
    assert (run / "samples" / "step-00000006.png").is_file()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert start_run(tiny_config(steps=1), runs).run_dir.name.startswith("00001-")


def test_vae_loss_goes_down(runs: Path) -> None:
    t = start_run(tiny_config("vae", steps=40, metric_every=0, sample_every=0,
                              checkpoint_every=0, extra={"model_config": {"lr": 3e-3}}), runs)
    t.fit()
    log = [json.loads(x) for x in (t.run_dir / "log.jsonl").read_text().splitlines()]
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < 0.7 * first
    assert all(r["kl"] >= 0 and r["recon"] > 0 for r in log)


class NaNAt(Callback):
    """Makes the task's loss non-finite at the given steps (each once)."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = list(steps)

    def setup(self, trainer: Trainer) -> None:
        task = trainer.task
        original = task.train_step

        def step(batch, step, generator):  # type: ignore[no-untyped-def]
            logs = original(batch, step, generator)
            if self.steps and step + 1 == self.steps[0]:
                self.steps.pop(0)
                logs["loss_d"] = torch.tensor(float("nan"))
            return logs

        task.train_step = step  # type: ignore[method-assign]


def test_nan_rolls_back_with_lower_lr(runs: Path) -> None:
    t = start_run(tiny_config(steps=6), runs)
    t.callbacks.append(NaNAt([5]))
    t.callbacks[-1].setup(t)
    lr0 = t.task.optimizers["G"].param_groups[0]["lr"]
    t.fit()
    assert t.step == 6 and t.nan_events == 1
    assert t.task.optimizers["G"].param_groups[0]["lr"] == pytest.approx(lr0 * 0.5)
    events = [json.loads(x) for x in (t.run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "nan-rollback" and events[0]["step"] == 4


def test_nan_gives_up_after_three_tries(runs: Path) -> None:
    t = start_run(tiny_config(steps=6), runs)
    cb = NaNAt([5, 5, 5, 5])
    t.callbacks.append(cb)
    cb.setup(t)
    with pytest.raises(TrainingDiverged, match="3 roll-backs"):
        t.fit()


class CtrlCAt(Callback):
    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, trainer: Trainer, logs: dict[str, torch.Tensor]) -> None:
        if trainer.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_and_resumes_exactly(runs: Path) -> None:
    straight = start_run(tiny_config(steps=6), runs)
    straight.fit()
    t = start_run(tiny_config(steps=6), runs)
    t.callbacks.append(CtrlCAt(3))
    result = t.fit()
    assert result.interrupted and result.step == 3
    resumed = resume_run(t.run_dir)
    assert resumed.step == 3
    resumed.fit()
    assert_same(weights(straight.run_dir), weights(resumed.run_dir))


def test_resume_refuses_changes_that_alter_the_result(runs: Path) -> None:
    t = start_run(tiny_config(steps=2), runs)
    t.fit()
    with pytest.raises(ConfigError, match="batch_size"):
        resume_run(t.run_dir, steps=4, train_overrides={"batch_size": 8})
    with pytest.raises(ConfigError, match="already at step 2"):
        resume_run(t.run_dir)
    with pytest.raises(MuselabError, match="not a muselab run"):
        resume_run(runs)


def test_bad_config_values_name_the_setting(runs: Path) -> None:
    with pytest.raises(ConfigError, match="train.steps"):
        tiny_config(steps=0)
    with pytest.raises(ConfigError, match="unknown setting 'widht'"):
        tiny_config(extra={"model_config": {"net": {"widht": 3}}})
    with pytest.raises(ConfigError, match="lr_g"):
        tiny_config(extra={"model_config": {"lr_g": "fast"}})
    with pytest.raises(ConfigError, match="unknown model 'gann'"):
        tiny_config("gann")
    with pytest.raises(ConfigError, match="wgan-gp"):
        tiny_config("wgan-gp", extra={"model_config": {"net": {"d_norm": "batch"}}})
    assert not runs.exists()  # nothing half-made
