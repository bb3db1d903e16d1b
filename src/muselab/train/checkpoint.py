"""Checkpoints as safetensors: weights in ``model.safetensors``, the rest in ``state.safetensors``.

``model.safetensors`` holds every network of the task under its name prefix
(``G.``, ``D.``, ``G_ema.`` ...) and, in its metadata, the resolved run config and
the muselab version, so a model file alone is enough to sample. ``state.safetensors``
holds optimisers, RNG streams, the step and callback state. Both are written
atomically. No code is pickled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from muselab import __version__
from muselab.errors import MuselabError
from muselab.io import atomic_write, ensure_dir
from muselab.train import state as st

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"


def module_tensors(modules: dict[str, nn.Module]) -> dict[str, Tensor]:
    """All parameters and buffers, keyed ``<module>.<param>``."""
    out: dict[str, Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            out[f"{name}.{key}"] = value.detach().cpu().contiguous()
    return out


def save_model(
    path: Path, modules: dict[str, nn.Module], config: dict[str, Any], step: int,
    dtype: torch.dtype | None = None,
) -> None:
    """Weights + config metadata; ``dtype`` (e.g. float16) casts floating tensors to ship."""
    meta = {
        "format": "muselab-model/1",
        "muselab_version": __version__,
        "torch_version": torch.__version__,
        "step": str(step),
        "config": json.dumps(config, sort_keys=True),
    }
    tensors = module_tensors(modules)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    _write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def save_state(path: Path, state: dict[str, Any]) -> None:
    tensors: dict[str, Tensor] = {}
    tree = st.flatten(state, "s", tensors)
    meta = {"format": "muselab-state/1", "muselab_version": __version__, "tree": st.dumps(tree)}
    _write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _write(path: Path, writer: Callable[[str], None]) -> None:
    """``atomic_write``, with a failed write (full disk, quota, I/O error) reported as a
    :class:`MuselabError` naming the file; the file ``path`` had before is left as it was."""
    try:
        atomic_write(path, writer)
    except (OSError, SafetensorError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise MuselabError(f"could not write {path}: {why}; the file it would replace is "
                           "intact (free some disk space and try again; a training run "
                           "continues from its last checkpoint with --resume)") from exc


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (config, step, version); anything else
    (a pickled ``.pt``/``.ckpt``, a truncated file) is refused, never unpickled."""
    _must_exist(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except SafetensorError as exc:
        raise MuselabError(f"{path} is not a safetensors file ({exc}); muselab loads weights "
                           "only from .safetensors and never unpickles files") from None


def load_model(path: Path, modules: dict[str, nn.Module], strict: bool = True) -> dict[str, str]:
    """Load weights into ``modules`` (matched by name prefix); return the metadata."""
    meta = read_metadata(path)
    tensors = load_file(str(path))
    for name, module in modules.items():
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sub and not strict:
            continue
        try:
            module.load_state_dict(sub, strict=strict)
        except RuntimeError as exc:
            raise MuselabError(f"{path}: weights do not fit network {name!r}: {exc}") from exc
    return meta


def load_state(path: Path) -> dict[str, Any]:
    meta = read_metadata(path)
    tensors = load_file(str(path))
    return st.unflatten(json.loads(meta["tree"]), tensors)


def link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link, else copy), atomically."""
    ensure_dir(dst.parent)
    tmp = dst.with_name(f".{dst.name}.link")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _must_exist(path: Path) -> None:
    if not path.is_file():
        raise MuselabError(f"checkpoint file {path} does not exist")
