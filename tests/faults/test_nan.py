"""NaN injected into the weights mid-run: the trainer rolls back to the last checkpoint
with a lower learning rate and finishes with finite weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from muselab.train import checkpoint as ck
from muselab.train.callbacks import Callback
from muselab.train.run import start_run
from muselab.train.trainer import Trainer, TrainingDiverged
from tests.faults.conftest import kill_config


class PoisonWeights(Callback):
    """Writes NaN into one weight of the network after the given steps (a corrupted update,
    as an fp16 overflow or a bad batch would leave it); the next step's loss is NaN."""

    order = 99  # after the checkpoint of that step: the poison is not saved

    def __init__(self, steps: list[int]) -> None:
        self.steps = list(steps)

    def on_step_end(self, trainer: Trainer, logs: dict[str, torch.Tensor]) -> None:
        if self.steps and trainer.step == self.steps[0]:
            self.steps.pop(0)
            net = next(iter(trainer.task.modules.values()))
            with torch.no_grad():
                next(iter(net.parameters())).view(-1)[0] = float("nan")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _poisoned(runs: Path, steps: list[int], total: int) -> Trainer:
    trainer = start_run(kill_config(steps=total, checkpoint_every=3), runs)
    cb = PoisonWeights(steps)
    trainer.callbacks.append(cb)
    cb.setup(trainer)
    return trainer


def test_nan_in_the_weights_rolls_back(runs: Path) -> None:
    trainer = _poisoned(runs, [4], total=8)
    opt = next(iter(trainer.task.optimizers.values()))
    lr0 = opt.param_groups[0]["lr"]
    trainer.fit()
    assert trainer.step == 8 and trainer.nan_events == 1
    assert opt.param_groups[0]["lr"] == pytest.approx(lr0 * trainer.cfg.lr_backoff)
    saved = ck.load_model(trainer.run_dir / ck.MODEL_FILE, trainer.task.modules)
    assert saved["step"] == "8"
    assert all(torch.isfinite(p).all() for m in trainer.task.modules.values()
               for p in m.state_dict().values() if p.is_floating_point())
    events = _jsonl(trainer.run_dir / "events.jsonl")
    assert [(e["event"], e["step"]) for e in events] == [("nan-rollback", 3)]
    steps = [r["step"] for r in _jsonl(trainer.run_dir / "log.jsonl")]
    assert steps == list(range(1, 9))  # the poisoned step's line was replaced, not doubled


def test_nan_that_keeps_coming_back_stops_with_a_clear_error(runs: Path) -> None:
    trainer = _poisoned(runs, [4, 4, 4, 4], total=8)
    with pytest.raises(TrainingDiverged, match="after 3 roll-backs; lower the learning rate"):
        trainer.fit()
    assert trainer.latest_checkpoint() is not None  # what was saved before is still there
