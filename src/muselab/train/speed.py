"""Speed options of the Trainer (``train.autocast``, ``train.compile``, ``train.channels_last``).

* ``autocast = "bf16"``: mixed precision (Micikevicius et al. 2018) with bfloat16
  (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep Learning Training"): matmuls and
  convolutions run in bf16 under ``torch.autocast``, weights and optimiser state stay
  fp32, so no loss scaling is needed.
* ``compile = true``: TorchInductor code generation of every trained module
  (Ansel et al. 2024, "PyTorch 2"), in place (``nn.Module.compile``), so state-dict
  keys, checkpoints and the EMA copy are unchanged. The first steps pay the compilation.
* ``channels_last = true``: NHWC memory layout of 4-D weights and image batches, the
  layout oneDNN's convolutions prefer (PyTorch "channels last" memory format).

Measured on this project's 2-core CPU by ``benchmarks/speed.py``; docs/performance.md
("Speed options") has the ratios and why each one is on or off by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

from muselab.config import check_choice
from muselab.train.task import Batch, Task

Autocast = Literal["off", "bf16"]
AUTOCAST = ("off", "bf16")


def check(autocast: str) -> None:
    """Raise a ConfigError naming ``train.autocast`` unless it is a known mode."""
    check_choice("train.autocast", autocast, AUTOCAST)


def prepare(task: Task, compile_modules: bool, channels_last: bool) -> None:
    """Apply the layout and compilation switches to the task's trained modules.

    Call after the EMA copy exists: the averaged copy keeps plain eager modules (a
    compiled module's deep copy would call the original's compiled code).
    """
    trained = [m for name, m in task.modules.items()
               if not name.endswith("_ema") and any(p.requires_grad for p in m.parameters())]
    for module in trained:
        if channels_last:
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if compile_modules:
            module.compile()


def format_batch(batch: Batch, channels_last: bool) -> Batch:
    """``batch`` with its images in NHWC memory order when ``channels_last`` (4-D only)."""
    if not channels_last or batch.images.dim() != 4:
        return batch
    return Batch(batch.images.contiguous(memory_format=torch.channels_last), batch.labels)


@contextmanager
def autocast(mode: str, device: torch.device) -> Iterator[None]:
    """bfloat16 autocast on ``device`` for ``mode == "bf16"``; nothing for ``"off"``."""
    ctx: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if mode == "bf16":
        ctx = torch.autocast(device.type, dtype=torch.bfloat16)
    with ctx:
        yield
