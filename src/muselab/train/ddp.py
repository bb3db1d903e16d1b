"""Data-parallel training under ``torchrun`` (PyTorch distributed, gloo on CPU, NCCL on CUDA).

``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` joins the process
group from them (``env://``). Without them nothing here does anything: a single
process is a world of one.

How the Trainer uses it:

* **Data.** muselab's batches are a pure function of ``(seed, step)``. Every rank
  draws the same *global* batch of ``train.batch_size`` images and keeps its
  contiguous slice (:func:`shard`), the effect of a ``DistributedSampler`` with no
  sampler state: the global batch of a step is the same whatever the world size. A
  world size that does not divide the batch is a :class:`ConfigError`.
* **Gradients.** :class:`GradSync` averages gradients over ranks with one
  ``all_reduce`` per optimiser step (a pre-step hook on every optimiser of the task).
  Each rank's loss is a mean over its ``B / W`` images, so the average is the gradient
  of the mean over the global batch: what ``DistributedDataParallel`` computes.
  muselab does not wrap modules in ``DistributedDataParallel`` because its tasks step
  several optimisers per iteration, call the discriminator in the generator step with
  its parameters frozen, and take ``torch.autograd.grad`` for WGAN-GP and R1 penalties:
  the DDP docs state that it "doesn't work with torch.autograd.grad() (i.e. it will only
  work if gradients are to be accumulated in .grad attributes of parameters)" and that
  parameters not used in a forward pass need ``find_unused_parameters=True``
  (https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html).
  Reducing in the optimiser hook works for every task unchanged, at the cost of not
  overlapping communication with the backward pass.
* **Buffers.** Like DDP's ``broadcast_buffers=True``, rank 0's buffers (batch-norm
  running statistics) are broadcast after each step. Batch norm normalises with each
  rank's own batch statistics (``SyncBatchNorm`` needs CUDA; it is switched on there).
* **Randomness.** All ranks hold the same trainer generator (it is what checkpoints
  save). Each step, every rank derives its own generator from one number drawn from it
  (:func:`step_generator`), so ranks draw different noise and a run resumes exactly.
* **Rank 0** alone writes the run directory, logs, samples, metrics and checkpoints;
  callbacks that change the model (EMA) run on every rank.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from muselab.errors import ConfigError, MuselabError
from muselab.train.task import Batch

#: Seconds to wait for all ranks at the rendezvous and for any collective.
TIMEOUT_ENV = "MUSELAB_DDP_TIMEOUT"
DEFAULT_TIMEOUT_S = 900.0  # also bounds a collective: rank 0 sampling while the rest wait
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> World:
    """The world ``torchrun`` describes in the environment (a world of one without it)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as exc:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {exc}") from None


def current() -> World:
    """The world of the initialised process group, else a world of one."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), env_world().local_rank)
    return World()


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: expected seconds") from None
    if value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: must be positive")
    return value


def rank_device(device: torch.device, world: World) -> torch.device:
    """One GPU per local rank on CUDA; the device unchanged otherwise."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group ``torchrun`` set up (no-op without one); the rank's device.

    A rank that waits longer than ``$MUSELAB_DDP_TIMEOUT`` seconds for the others
    (a stale rendezvous) raises :class:`MuselabError` naming the address.
    """
    world = env_world()
    if not world.distributed or dist.is_initialized():
        return current(), rank_device(device, current())
    device = rank_device(device, world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    seconds, t0 = timeout_s(), time.monotonic()
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
    except (RuntimeError, TimeoutError, ValueError) as exc:
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        why = (str(exc).splitlines() or [""])[0]
        raise MuselabError(
            f"distributed rendezvous at {where} failed for rank {world.rank} of {world.size} "
            f"after {time.monotonic() - t0:.0f} s (timeout {seconds:g} s; {type(exc).__name__}: "
            f"{why}); start every rank with the same --rdzv-endpoint / MASTER_ADDR:MASTER_PORT, "
            f"or raise {TIMEOUT_ENV}") from None
    return current(), device


def check_batch(batch_size: int, world: World, what: str = "train.batch_size") -> int:
    """The per-rank batch; :class:`ConfigError` unless the world size divides the batch."""
    if batch_size % world.size:
        raise ConfigError(f"{what}={batch_size} cannot be split over {world.size} processes; "
                          f"use a multiple of {world.size}")
    return batch_size // world.size


def shard(batch: Batch, world: World) -> Batch:
    """This rank's contiguous slice of the global batch."""
    if not world.distributed:
        return batch
    b = check_batch(len(batch.images), world, "batch")
    lo, hi = world.rank * b, (world.rank + 1) * b
    labels = batch.labels[lo:hi] if batch.labels is not None else None  # [b]
    return replace(batch, images=batch.images[lo:hi], labels=labels)  # [b, ...]


def step_generator(shared: torch.Generator, world: World, out: torch.Generator) -> torch.Generator:
    """Reseed ``out`` for this step and rank from one draw of the rank-shared ``shared``."""
    draw = int(torch.randint(0, 2**62, (1,), generator=shared, device=shared.device).item())
    return out.manual_seed((draw + 0x9E3779B97F4A7C15 * world.rank) % 2**63)


def any_true(flags: Sequence[bool], device: torch.device) -> list[bool]:
    """Each flag made true on every rank if it is true on any rank (one tiny all-reduce)."""
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)  # [F]
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in t.tolist()]


def broadcast_object(obj: T, world: World) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_tensors(tensors: Iterable[Tensor]) -> None:
    """Overwrite ``tensors`` with rank 0's values (one flat broadcast per dtype)."""
    by_type: dict[tuple[torch.dtype, torch.device], list[Tensor]] = {}
    for t in tensors:
        by_type.setdefault((t.dtype, t.device), []).append(t)
    for group in by_type.values():
        flat = torch.cat([t.detach().reshape(-1) for t in group])  # [sum numel]
        dist.broadcast(flat, src=0)
        _unflatten_into(flat, group)


def sync_modules(modules: Iterable[nn.Module], buffers_only: bool = False) -> None:
    """Rank 0's parameters and buffers (or buffers only) on every rank."""
    tensors: list[Tensor] = []
    for m in modules:
        if not buffers_only:
            tensors += [p.data for p in m.parameters()]
        tensors += list(m.buffers())
    if tensors:
        with torch.no_grad():
            broadcast_tensors(tensors)


def all_reduce_mean(grads: Sequence[Tensor], world: World) -> None:
    """Average ``grads`` in place over ranks: one flat all-reduce per dtype."""
    by_type: dict[torch.dtype, list[Tensor]] = {}
    for g in grads:
        by_type.setdefault(g.dtype, []).append(g)
    for group in by_type.values():
        flat = torch.cat([g.reshape(-1) for g in group])  # [sum numel]
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world.size)
        _unflatten_into(flat, group)


def _unflatten_into(flat: Tensor, tensors: Sequence[Tensor]) -> None:
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


class GradSync:
    """Averages gradients over ranks just before each ``optimizer.step()``."""

    def __init__(self, optimizers: Iterable[torch.optim.Optimizer], world: World) -> None:
        self.world = world
        self.handles = [opt.register_step_pre_hook(self._hook) for opt in optimizers]

    def _hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        with torch.no_grad():
            all_reduce_mean(grads, self.world)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def use_sync_batchnorm(modules: dict[str, nn.Module], device: torch.device) -> None:
    """Batch norm with statistics over the global batch (CUDA only: SyncBatchNorm)."""
    if device.type != "cuda":
        return
    for name, module in modules.items():
        modules[name] = nn.SyncBatchNorm.convert_sync_batchnorm(module)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# -- launching ----------------------------------------------------------------------------------


def strip_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(f"{option}="):
            out.append(arg)
    return out


def launch_args(argv: Sequence[str], command: str) -> list[str]:
    """The muselab arguments to run on every rank: ``argv`` without ``--nproc``."""
    if command not in argv:
        raise ConfigError(f"--nproc: run it from the command line (muselab {command} ...)")
    return strip_option(argv, "--nproc")


def torchrun_command(nproc: int, args: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run`` on this machine running ``muselab args``."""
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: must be at least 1")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "muselab.cli", *args]


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run ``muselab args`` on ``nproc`` local processes; torchrun's exit code.

    Each rank gets one torch thread unless ``OMP_NUM_THREADS`` says otherwise.
    """
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(torchrun_command(nproc, args), env=env)
