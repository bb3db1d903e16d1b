"""Trainer callbacks: EMA, metrics, sample grids, checkpoints, logs, TensorBoard, progress.

Each callback sees the Trainer at fixed points. Callbacks never draw from the
training random stream, so turning one on or off never changes the weights.
They run in ``order``: EMA first (later callbacks sample from the averaged weights),
metrics before checkpoints (so a checkpoint knows whether it is the best).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor

from muselab.image.io import make_grid, save_png
from muselab.io import atomic_open

if TYPE_CHECKING:
    from muselab.train.trainer import Trainer


class Callback:
    """Base class: override what you need. State must be tensors and JSON values."""

    order = 50
    #: Run on every rank of a data-parallel run (callbacks that change the model); the
    #: others run on rank 0 only (muselab.train.ddp).
    all_ranks = False

    def setup(self, trainer: Trainer) -> None:
        """Before any checkpoint is loaded (add modules here)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """After resume, before the first step."""

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        """After each finite optimisation step; ``trainer.step`` is already incremented."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last step, or after Ctrl-C."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


class EMA(Callback):
    """Exponential moving average of the generator's weights (Karras 2018; Yazici 2019).

    The decay ramps up as ``min(decay, (1 + t) / (10 + t))`` so early averages are not
    dominated by the random initialisation. The copy is saved as ``<name>_ema``.
    """

    order = 0
    all_ranks = True

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def setup(self, trainer: Trainer) -> None:
        ema = trainer.task.add_ema()
        if ema is None:
            return
        src = trainer.task.modules[str(trainer.task.ema_source)]
        self._pairs: tuple[list[Tensor], list[Tensor]] = (
            list(ema.parameters()), list(src.parameters()))
        self._buffers = (list(ema.buffers()), list(src.buffers()))

    @torch.no_grad()
    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        if trainer.task.ema_source is None:
            return
        t = trainer.step
        beta = min(self.decay, (1 + t) / (10 + t))
        ema_p, src_p = self._pairs
        torch._foreach_lerp_(ema_p, src_p, 1.0 - beta)  # ema += (1 - beta) * (src - ema)
        for b_ema, b_src in zip(*self._buffers, strict=True):
            b_ema.copy_(b_src)


class Periodic(Callback):
    """Fires at step 0 of a fresh run, every ``every`` steps, and once more at the end."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.last_fired = -1

    def fire(self, trainer: Trainer) -> None:
        raise NotImplementedError

    def fired_at(self, trainer: Trainer) -> int:
        """The step this callback last fired at (-1: never)."""
        return self.last_fired

    def _fire(self, trainer: Trainer) -> None:
        self.fire(trainer)
        self.last_fired = trainer.step

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.step == 0:
            self._fire(trainer)

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        if _due(trainer.step, self.every):
            self._fire(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.fired_at(trainer) != trainer.step:
            self._fire(trainer)


class SWDMetric(Periodic):
    """Sliced Wasserstein distance over Laplacian pyramids (Karras 2018), every N steps.

    Compares ``n`` generated images against a fixed random subset of the training
    set; appends to ``metrics.jsonl`` and ``trainer.metrics['swd']``.
    """

    order = 10
    name = "swd"

    def __init__(self, every: int, n: int, seed: int = 0) -> None:
        super().__init__(every)
        self.n, self.seed = n, seed

    def on_train_start(self, trainer: Trainer) -> None:
        g = torch.Generator().manual_seed(self.seed)
        images = trainer.data.images  # uint8 [N, C, H, W]
        idx = torch.randperm(len(images), generator=g)[: self.n]
        self.reference = images[idx].permute(0, 2, 3, 1).numpy()  # uint8 [n, H, W, C]
        super().on_train_start(trainer)

    def fire(self, trainer: Trainer) -> None:
        from muselab.evaluate.swd import swd

        fake = trainer.generate(len(self.reference), seed=self.seed + 1)  # uint8 [n, H, W, C]
        t0 = time.perf_counter()
        result = swd(self.reference, fake, seed=self.seed)
        trainer.record_metric(self.name, result.mean)
        trainer.append_jsonl("metrics.jsonl", {
            "step": trainer.step, "metric": self.name, "value": result.mean,
            "per_level": dict(zip(map(str, result.levels), result.per_level, strict=True)),
            "n": len(self.reference), "elapsed_s": trainer.elapsed(),
            "seconds": time.perf_counter() - t0,
        })


class SampleGrid(Periodic):
    """A grid of samples from fixed latents every N steps (``samples/step-XXXXXXXX.png``)."""

    order = 20

    def __init__(self, every: int, n: int, seed: int = 12345) -> None:
        super().__init__(every)
        self.n, self.seed = n, seed

    def fire(self, trainer: Trainer) -> None:
        images = trainer.generate(self.n, seed=self.seed)  # uint8 [n, H, W, C]
        grid = make_grid(images)
        path = trainer.run_dir / "samples" / f"step-{trainer.step:08d}.png"
        save_png(path, grid, trainer.provenance(seed=self.seed))
        trainer.log_image("samples", grid)


class Checkpoint(Periodic):
    """Save every N steps and at the end; keep the last K and the best by a metric."""

    order = 30

    def __init__(self, every: int, keep: int, monitor: str = "swd") -> None:
        super().__init__(every)
        self.keep, self.monitor = keep, monitor
        self.best = math.inf
        self.best_step = -1

    def fired_at(self, trainer: Trainer) -> int:
        return trainer.last_checkpoint_step  # also set by resume and roll-back

    def fire(self, trainer: Trainer) -> None:
        value = trainer.metrics.get(self.monitor)
        is_best = (
            value is not None
            and trainer.metric_steps.get(self.monitor) == trainer.step
            and value < self.best
        )
        if is_best:
            self.best, self.best_step = float(value), trainer.step  # type: ignore[arg-type]
        ckpt = trainer.save_checkpoint()
        if is_best:
            trainer.link_best(ckpt)
        self._prune(trainer)

    def _prune(self, trainer: Trainer) -> None:
        steps = sorted(trainer.checkpoint_dirs())
        for path in steps[: max(0, len(steps) - self.keep)]:
            shutil.rmtree(path, ignore_errors=True)
        for torn in [*trainer.run_dir.glob(".*.tmp*"), *trainer.run_dir.glob("*/*/.*.tmp*")]:
            torn.unlink(missing_ok=True)  # writes cut short by a crash (muselab.io._replacing)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = float(state["best"]), int(state["best_step"])


class ScalarLog(Callback):
    """Mean of each logged loss over the last N steps -> ``log.jsonl`` and TensorBoard.

    Runs before :class:`Checkpoint`: a kill between the two then only loses a line that the
    resumed run writes again (after it, the line of the checkpointed step would be lost).
    """

    order = 25

    def __init__(self, every: int) -> None:
        self.every = every
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        for k, v in logs.items():
            self._sums[k] = self._sums.get(k, 0.0) + float(v)
            self._counts[k] = self._counts.get(k, 0) + 1
        if _due(trainer.step, self.every):
            means = {k: self._sums[k] / self._counts[k] for k in self._sums}
            trainer.latest_losses = means
            trainer.append_jsonl("log.jsonl", {"step": trainer.step, **means,
                                               "elapsed_s": trainer.elapsed()})
            trainer.log_scalars({f"loss/{k}": v for k, v in means.items()})
            self._sums.clear()
            self._counts.clear()


class TensorBoard(Callback):
    """Scalars and image grids for TensorBoard under ``<run>/tb``."""

    order = 45

    def setup(self, trainer: Trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(trainer.run_dir / "tb"))
        trainer.scalar_sinks.append(self._scalars)
        trainer.image_sinks.append(self._image)

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def _image(self, step: int, tag: str, image: Any) -> None:
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def on_train_end(self, trainer: Trainer) -> None:
        self.writer.flush()
        self.writer.close()


class ProgressBar(Callback):
    """A rich progress bar with ETA and the latest losses; a summary table at the end."""

    order = 90

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def on_train_start(self, trainer: Trainer) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, auto_refresh=False, transient=False,
        )  # refreshed from the loop: a refresh thread would contend for the GIL with torch
        self.progress.start()
        self._t0, self._s0 = time.perf_counter(), trainer.step
        self._last_refresh = 0.0
        self.bar = self.progress.add_task(
            trainer.run_dir.name, total=trainer.cfg.steps, completed=trainer.step,
            info="", rate="",
        )

    def on_step_end(self, trainer: Trainer, logs: dict[str, Tensor]) -> None:
        fields: dict[str, Any] = {}
        if _due(trainer.step, max(1, trainer.cfg.log_every)):
            rate = (trainer.step - self._s0) * trainer.cfg.batch_size / (
                time.perf_counter() - self._t0)
            fields["rate"] = f"{rate:.0f} img/s"
            fields["info"] = " ".join(
                f"{k}={v:.3f}" for k, v in trainer.latest_losses.items()
            ) + (f" swd={trainer.metrics['swd']:.1f}" if "swd" in trainer.metrics else "")
        self.progress.update(self.bar, completed=trainer.step, **fields)
        now = time.perf_counter()
        if now - self._last_refresh > 0.5:
            self.progress.refresh()
            self._last_refresh = now

    def on_train_end(self, trainer: Trainer) -> None:
        self.progress.update(self.bar, completed=trainer.step)
        self.progress.stop()
        self.console.print(trainer.summary_table())


def append_jsonl_line(path: Any, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync (a crash loses at most the line being written)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def truncate_jsonl(path: Any, max_step: int) -> None:
    """Drop records logged after ``max_step`` (a resumed run re-logs them)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return
    keep = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= max_step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError):
            continue  # a torn last line from a crash
    with atomic_open(path, "w") as fh:
        fh.write("".join(f"{line}\n" for line in keep))
