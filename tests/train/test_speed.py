"""Speed options of the Trainer: bf16 autocast, channels_last, torch.compile switches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from muselab.errors import ConfigError
from muselab.train import speed
from muselab.train.callbacks import Callback
from muselab.train.run import start_run
from muselab.train.trainer import Trainer
from tests.tiny import tiny_config


class Record(Callback):
    """Losses of every step and the dtype/layout the generator's first conv saw."""

    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        self.losses.append({k: float(v) for k, v in logs.items()})


def _train(tmp_path: Path, **train: Any) -> tuple[Trainer, Record, list[torch.dtype]]:
    rec = Record()
    trainer = start_run(tiny_config("dcgan", steps=3, sample_every=0, metric_every=0,
                                    checkpoint_every=0, ema_decay=0.0, **train),
                        tmp_path / "runs", callbacks=[rec])
    seen: list[torch.dtype] = []
    conv = next(m for m in trainer.task.modules["D"].modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer.fit()
    return trainer, rec, seen


def test_bf16_autocast_trains_in_bf16_with_close_losses(tmp_path: Path) -> None:
    _, base, dtypes = _train(tmp_path)
    _, bf16, bf16_dtypes = _train(tmp_path, autocast="bf16")
    assert set(dtypes) == {torch.float32} and set(bf16_dtypes) == {torch.bfloat16}
    first, first_bf16 = base.losses[0]["loss_d"], bf16.losses[0]["loss_d"]
    assert first_bf16 != first and abs(first_bf16 - first) < 0.05 * abs(first)
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in bf16.losses)


def test_channels_last_gives_the_same_losses(tmp_path: Path) -> None:
    _, base, _ = _train(tmp_path)
    trainer, nhwc, _ = _train(tmp_path, channels_last=True)
    w = trainer.task.modules["G"].body.to_image.weight  # type: ignore[union-attr]
    assert w.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(base.losses, nhwc.losses, strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)


def test_compile_wraps_trained_modules_only(tmp_path: Path) -> None:
    trainer = start_run(tiny_config("dcgan-da", steps=1), tmp_path / "runs")  # has an EMA copy
    speed.prepare(trainer.task, compile_modules=True, channels_last=False)
    compiled = {k for k, m in trainer.task.modules.items()
                if getattr(m, "_compiled_call_impl", None) is not None}
    assert compiled == {"G", "D"}  # the EMA copy "G_ema" stays eager
    assert set(trainer.task.modules["G"].state_dict()) == set(
        trainer.task.modules["G_ema"].state_dict())  # checkpoint keys unchanged


def test_unknown_autocast_mode_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="train.autocast"):
        tiny_config("dcgan", autocast="fp8")
