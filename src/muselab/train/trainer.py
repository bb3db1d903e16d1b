"""ONE Trainer for every model (nanoGPT's loop, stylegan2-ada's run directories).

The loop is short: fetch the batch of step ``k``, let the task take one step, check
the losses are finite, run the callbacks. Everything a run needs to continue
exactly (weights, optimisers, RNG streams, callback state) is in its checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.table import Table
from torch import Tensor

from muselab import __version__
from muselab.config import check_range
from muselab.errors import MuselabError
from muselab.train import checkpoint as ck
from muselab.train import ddp, speed
from muselab.train.callbacks import (
    EMA,
    Callback,
    Checkpoint,
    ProgressBar,
    SampleGrid,
    ScalarLog,
    SWDMetric,
    TensorBoard,
    append_jsonl_line,
    truncate_jsonl,
)
from muselab.train.data import ImageBatches, to_uint8
from muselab.train.state import rng_state, set_rng_state
from muselab.train.task import Task

log = logging.getLogger("muselab.train")


class TrainingDiverged(MuselabError):
    """The loss went non-finite more often than ``max_nan_retries`` allows."""


@dataclass
class TrainConfig:
    """How to train (not what): steps, batch, cadence of callbacks, seed, device."""

    steps: int = 5000
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    log_every: int = 50
    sample_every: int = 500
    sample_n: int = 64
    checkpoint_every: int = 500
    keep_last: int = 3
    metric_every: int = 500  # 0 disables the SWD quality curve
    metric_n: int = 512
    ema_decay: float = 0.999  # 0 disables EMA of generator weights
    tensorboard: bool = True
    progress: bool = True
    max_minutes: float = 0.0  # wall-clock budget: save and stop after it (0 = no limit)
    max_nan_retries: int = 3
    lr_backoff: float = 0.5  # learning-rate factor after each NaN roll-back
    # speed options (muselab.train.speed; measured in docs/performance.md)
    autocast: str = "off"  # "bf16": bfloat16 autocast (Kalamkar et al. 2019)
    compile: bool = False  # torch.compile of the trained modules (Ansel et al. 2024)
    channels_last: bool = False  # NHWC weights and batches

    def __post_init__(self) -> None:
        check_range("train.steps", self.steps, 1)
        check_range("train.batch_size", self.batch_size, 1, 65536)
        check_range("train.threads", self.threads, 0, 1024)
        for name in ("log_every", "sample_every", "checkpoint_every", "metric_every"):
            check_range(f"train.{name}", getattr(self, name), 0)
        check_range("train.sample_n", self.sample_n, 1, 1024)
        check_range("train.keep_last", self.keep_last, 1)
        check_range("train.metric_n", self.metric_n, 16)
        check_range("train.ema_decay", self.ema_decay, 0.0, 0.99999)
        check_range("train.max_minutes", self.max_minutes, 0.0)
        check_range("train.max_nan_retries", self.max_nan_retries, 0)
        check_range("train.lr_backoff", self.lr_backoff, 1e-6, 1.0)
        speed.check(self.autocast)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool
    seconds: float
    metrics: dict[str, float]


def default_callbacks(cfg: TrainConfig) -> list[Callback]:
    """The standard set, as configured by ``cfg``."""
    cbs: list[Callback] = [
        Checkpoint(cfg.checkpoint_every, cfg.keep_last),
        SampleGrid(cfg.sample_every, cfg.sample_n),
        ScalarLog(cfg.log_every),
    ]
    if cfg.ema_decay > 0:
        cbs.append(EMA(cfg.ema_decay))
    if cfg.metric_every > 0:
        cbs.append(SWDMetric(cfg.metric_every, cfg.metric_n))
    if cfg.tensorboard:
        cbs.append(TensorBoard())
    if cfg.progress:
        cbs.append(ProgressBar())
    return cbs


class Trainer:
    """Runs a :class:`Task` on :class:`ImageBatches` with callbacks, in a run directory."""

    def __init__(
        self,
        task: Task,
        data: ImageBatches,
        cfg: TrainConfig,
        run_dir: Path,
        config: dict[str, Any],
        callbacks: list[Callback] | None = None,
    ) -> None:
        self.task, self.data, self.cfg = task, data, cfg
        self.run_dir, self.config = run_dir, config
        self.device = data.device
        self.world = ddp.current()
        chosen = default_callbacks(cfg) if callbacks is None else callbacks
        if not self.world.is_main:  # rank 0 alone logs, samples, measures and saves
            chosen = [c for c in chosen if c.all_ranks]
        self.callbacks = sorted(chosen, key=lambda c: c.order)
        self.step = 0
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self._rank_generator = torch.Generator(device=self.device)
        if self.world.distributed:
            self._join_world()
        torch.manual_seed(cfg.seed)
        self.metrics: dict[str, float] = {}  # latest value of each metric
        self.metric_steps: dict[str, int] = {}  # ... and the step it was measured at
        self.latest_losses: dict[str, float] = {}
        self.scalar_sinks: list[Callable[[int, dict[str, float]], None]] = []
        self.image_sinks: list[Callable[[int, str, np.ndarray], None]] = []
        self.last_checkpoint_step = -1
        self.nan_events = 0
        self.stop_requested = False
        self.out_of_time = False
        self._elapsed_before = 0.0
        self._t_start = time.perf_counter()
        for cb in self.callbacks:
            cb.setup(self)
        speed.prepare(task, cfg.compile, cfg.channels_last)  # after the EMA copy exists

    # -- the loop ---------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train until ``cfg.steps`` (or Ctrl-C); always ends with a checkpoint."""
        self._t_start = time.perf_counter()
        for cb in self.callbacks:
            cb.on_train_start(self)
        deadline = self._t_start + 60 * self.cfg.max_minutes if self.cfg.max_minutes else None
        with self._sigint_stops():
            while self.step < self.cfg.steps and not self.stop_requested:
                self._one_step()
                late = self.out_of_time or (deadline is not None
                                            and time.perf_counter() > deadline)
                if self.world.distributed:  # every rank stops at the same step
                    self.stop_requested, late = ddp.any_true([self.stop_requested, late],
                                                             self.device)
                if late:  # max_minutes, or a callback's budget (muselab.train.tune)
                    if not self.out_of_time:
                        log.warning("time budget of %s min reached at step %d",
                                    self.cfg.max_minutes, self.step)
                    self.out_of_time = True
                    break
        for cb in self.callbacks:
            cb.on_train_end(self)
        if self.world.distributed:
            torch.distributed.barrier()  # rank 0 has written its last checkpoint
        if self.stop_requested:
            log.warning("interrupted: saved %s at step %d", self.run_dir, self.step)
        return TrainResult(self.run_dir, self.step, self.stop_requested, self.elapsed(),
                           dict(self.metrics))

    def _one_step(self) -> None:
        batch = ddp.shard(self.data.batch(self.step), self.world)  # this rank's slice
        generator = self.generator
        if self.world.distributed:
            generator = ddp.step_generator(self.generator, self.world, self._rank_generator)
        batch = speed.format_batch(batch, self.cfg.channels_last)
        with speed.autocast(self.cfg.autocast, self.device):
            logs = self.task.train_step(batch, self.step, generator)
        self.step += 1
        finite = _all_finite(logs)
        if self.world.distributed:
            ddp.sync_modules(self.task.modules.values(), buffers_only=True)
            finite = not ddp.any_true([not finite], self.device)[0]
        if not finite:
            self._roll_back(logs)
            return
        for cb in self.callbacks:
            cb.on_step_end(self, logs)

    def _roll_back(self, logs: dict[str, Tensor]) -> None:
        """Non-finite loss: reload the last checkpoint with a lower learning rate."""
        self.nan_events += 1
        bad = ", ".join(f"{k}={float(v)}" for k, v in logs.items())
        if self.nan_events > self.cfg.max_nan_retries:
            raise TrainingDiverged(
                f"loss became non-finite at step {self.step} ({bad}) after "
                f"{self.cfg.max_nan_retries} roll-backs; lower the learning rate in the config"
            )
        latest = self.latest_checkpoint()
        if latest is None:
            raise TrainingDiverged(
                f"loss became non-finite at step {self.step} before any checkpoint")
        self.load_checkpoint(latest)
        self.task.scale_lr(self.cfg.lr_backoff)
        msg = (f"non-finite loss at step {self.step + 0} ({bad}); rolled back to step {self.step} "
               f"with learning rate x{self.cfg.lr_backoff} (try {self.nan_events}/"
               f"{self.cfg.max_nan_retries})")
        log.warning(msg)
        self.append_jsonl("events.jsonl",
                          {"step": self.step, "event": "nan-rollback", "detail": msg})

    def _join_world(self) -> None:
        """Data-parallel set-up (:mod:`muselab.train.ddp`): rank 0's weights everywhere,
        gradients averaged before every optimiser step."""
        ddp.check_batch(self.cfg.batch_size, self.world)
        ddp.use_sync_batchnorm(self.task.modules, self.device)
        ddp.sync_modules(self.task.modules.values())
        self.grad_sync = ddp.GradSync(self.task.optimizers.values(), self.world)

    @contextmanager
    def _sigint_stops(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, save and stop. Second: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            log.warning("Ctrl-C: finishing step %d, saving, then stopping", self.step + 1)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed(),
            "rng": rng_state(self.generator),
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks},
            "metrics": dict(self.metrics),
            "metric_steps": dict(self.metric_steps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self._elapsed_before = float(state["elapsed"])
        self._t_start = time.perf_counter()
        set_rng_state(self.generator, state["rng"])
        for name, opt in self.task.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for cb in self.callbacks:
            cb.load_state_dict(state["callbacks"].get(type(cb).__name__, {}))
        self.metrics = dict(state["metrics"])
        self.metric_steps = dict(state["metric_steps"])

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step-N/`` and point the run's top-level files at it."""
        path = self.run_dir / "checkpoints" / f"step-{self.step:08d}"
        ck.save_model(path / ck.MODEL_FILE, self.task.modules, self.config, self.step)
        ck.save_state(path / ck.STATE_FILE, self.state_dict())
        ck.link_or_copy(path / ck.MODEL_FILE, self.run_dir / ck.MODEL_FILE)
        ck.link_or_copy(path / ck.STATE_FILE, self.run_dir / ck.STATE_FILE)  # last: commit point
        self.last_checkpoint_step = self.step
        return path

    def link_best(self, checkpoint: Path) -> None:
        ck.link_or_copy(checkpoint / ck.MODEL_FILE, self.run_dir / "best" / ck.MODEL_FILE)

    def checkpoint_dirs(self) -> list[Path]:
        root = self.run_dir / "checkpoints"
        return sorted(root.glob("step-*")) if root.is_dir() else []

    def latest_checkpoint(self) -> Path | None:
        complete = [p for p in self.checkpoint_dirs() if (p / ck.STATE_FILE).is_file()]
        return complete[-1] if complete else None

    def load_checkpoint(self, path: Path) -> None:
        """Restore weights, optimisers, RNG and callbacks from a checkpoint directory."""
        ck.load_model(path / ck.MODEL_FILE, self.task.modules)
        self.load_state_dict(ck.load_state(path / ck.STATE_FILE))
        self.last_checkpoint_step = self.step
        if self.world.is_main:
            for name in ("log.jsonl", "metrics.jsonl"):
                truncate_jsonl(self.run_dir / name, self.step)

    # -- services for callbacks -------------------------------------------------------------

    @torch.no_grad()
    def generate(self, n: int, seed: int, batch: int = 256) -> np.ndarray:
        """``n`` images (uint8 [n, H, W, C]) from latents of ``seed`` (not the training RNG)."""
        g = torch.Generator().manual_seed(seed)
        z = self.task.sample_z(n, g).to(self.device)  # [n, Z]
        labels = self._cycle_labels(n)
        parts = [
            to_uint8(self.task.sample(z[i : i + batch],
                                      None if labels is None else labels[i : i + batch]))
            for i in range(0, n, batch)
        ]
        return np.concatenate(parts)

    def _cycle_labels(self, n: int) -> Tensor | None:
        """Class ids cycling through the classes, or caption ids spread over the captions."""
        info = self.config.get("data_info", {})
        classes, captions = int(info.get("num_classes", 0)), int(info.get("num_captions", 0))
        if classes:
            return (torch.arange(n) % classes).to(self.device)
        if captions:
            return (torch.arange(n) * max(1, captions // n) % captions).to(self.device)
        return None

    def provenance(self, **extra: Any) -> dict[str, Any]:
        return {"model": self.config.get("model"), "run": self.run_dir.name, "step": self.step,
                "muselab_version": __version__, **extra}

    def record_metric(self, name: str, value: float) -> None:
        """Keep ``value`` as the latest ``name`` (checkpoints compare it for "best")."""
        self.metrics[name] = value
        self.metric_steps[name] = self.step
        self.log_scalars({f"metric/{name}": value})

    def elapsed(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t_start

    def append_jsonl(self, name: str, record: dict[str, Any]) -> None:
        if self.world.is_main:  # one log per run, however many ranks
            append_jsonl_line(self.run_dir / name, record)

    def log_scalars(self, values: dict[str, float]) -> None:
        for sink in self.scalar_sinks:
            sink(self.step, values)

    def log_image(self, tag: str, image: np.ndarray) -> None:
        for sink in self.image_sinks:
            sink(self.step, tag, image)

    def summary_table(self) -> Table:
        table = Table(title=f"muselab run {self.run_dir}", show_header=False)
        seconds = self.elapsed()
        table.add_row("steps", f"{self.step} / {self.cfg.steps}")
        table.add_row("time", f"{seconds / 60:.1f} min")
        table.add_row("images seen", f"{self.step * self.cfg.batch_size:,}")
        for k, v in self.latest_losses.items():
            table.add_row(k, f"{v:.4f}")
        for k, v in self.metrics.items():
            table.add_row(k, f"{v:.2f}")
        status = "done"
        if self.stop_requested or self.out_of_time:
            why = "interrupted" if self.stop_requested else "time budget reached"
            status = f"{why} (continue with --resume)"
        table.add_row("status", status)
        return table


def _all_finite(logs: dict[str, Tensor]) -> bool:
    if not logs:
        return True
    return bool(torch.isfinite(torch.stack([v.detach().float() for v in logs.values()])).all())
