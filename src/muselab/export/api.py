"""``muselab export``: a trained run or zoo model -> ONNX graphs + one JSON sidecar.

The folder written holds ``model.onnx`` (plus ``decoder.onnx`` for latent diffusion,
``reverse.onnx`` for CycleGAN) and ``model.json``: the kind of model, how to run it
(schedule, latent shape, conditioning, KV-cache layout), the run's config, licence,
muselab and torch versions, and each graph's sha256 and measured parity with torch.
:mod:`muselab.runtime` reads exactly this, without torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from muselab import __version__
from muselab.errors import ConfigError, MuselabError
from muselab.export.onnx import TOLERANCE, export_graph
from muselab.io import ensure_dir, write_json
from muselab.train.task import Task

#: Name of the sidecar next to ``model.onnx`` and the format version it follows.
SIDECAR, FORMAT_VERSION = "model.json", 1
#: Prompt embeddings saved for text models (the runtime has no text encoder).
PROMPTS = "prompts.npz"
#: Licence note of exports that are not zoo models (whose licence is on record).
RUN_LICENCE = ("weights trained by the user with muselab (Apache-2.0 code); the licence of "
               "the training data ({data}) applies to them, see docs/data.md")


@dataclass
class Loaded:
    """A model ready to export and what is known about where it came from."""

    task: Task
    config: dict[str, Any]
    name: str
    source: str
    licence: str


def load_for_export(spec: str, runs_dir: Path | None = None) -> Loaded:
    """A model file, run (directory, number or name) or zoo name, on the CPU in eval mode."""
    from muselab.models.zoo import list_pretrained, verify
    from muselab.train.run import load_task
    from muselab.train.rundir import find_run, runs_root

    path, licence, name = Path(spec), "", ""
    if not path.exists():
        zoo = {e.name: e for e in list_pretrained()}
        if spec in zoo:
            verify(zoo[spec])
            path, licence, name = zoo[spec].weights, zoo[spec].licence, spec
        else:
            try:
                path = find_run(spec, runs_root(runs_dir))
            except MuselabError:
                raise ConfigError(f"no model {spec!r} to export: not a file, a run under "
                                  f"{runs_root(runs_dir)} or a zoo model "
                                  f"({', '.join(zoo) or 'none installed'})") from None
    task, config = load_task(path, device="cpu")
    for module in task.modules.values():
        module.eval()
    name = name or (path.name if path.is_dir() else path.parent.name)
    data = config.get("data", {}).get("source", "unknown")
    return Loaded(task, config, name, str(path), licence or RUN_LICENCE.format(data=data))


def export_model(spec: str, out: Path | None = None, *, runs_dir: Path | None = None,
                 prompts: list[str] | None = None, tolerance: float = TOLERANCE) -> Path:
    """Export ``spec`` to ONNX under ``out`` (default ``exports/<name>``); returns the sidecar.

    ``prompts`` (text-to-image models) are embedded now and saved in ``prompts.npz``, so
    the torch-free runtime can sample them.
    """
    loaded = load_for_export(spec, runs_dir)
    return export_loaded(loaded, out or Path("exports") / loaded.name, prompts=prompts,
                         tolerance=tolerance)


def export_loaded(loaded: Loaded, out: Path, *, prompts: list[str] | None = None,
                  tolerance: float = TOLERANCE) -> Path:
    """Write the graphs of ``loaded`` and ``model.json`` into folder ``out``."""
    from muselab.export.targets import plan_export

    plan = plan_export(loaded.task, loaded.config)
    folder = ensure_dir(out, "export folder")
    torch.manual_seed(0)  # example inputs of the parity check
    graphs = {g.name: export_graph(g, folder / f"{g.name}.onnx", tolerance) for g in plan.graphs}
    if prompts:
        _save_prompts(plan.meta, prompts, folder / PROMPTS)
    sidecar = {
        "format": "muselab-onnx", "format_version": FORMAT_VERSION, "kind": plan.kind,
        "name": loaded.name, "recipe": loaded.config.get("model"), "source": loaded.source,
        "step": loaded.config.get("step"), "licence": loaded.licence,
        "muselab_version": __version__, "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "graphs": graphs,
        "prompts": PROMPTS if prompts else None, **plan.meta,
        "config": {k: v for k, v in loaded.config.items() if k != "step"},
    }
    write_json(folder / SIDECAR, sidecar)
    return folder / SIDECAR


def _save_prompts(meta: dict[str, Any], prompts: list[str], path: Path) -> None:
    """Sentence embeddings [N, D] of ``prompts`` (MiniLM, as at training) in an npz."""
    from muselab.io import atomic_open
    from muselab.models.text_encoder import embed_texts

    if meta.get("conditioning") != "text":
        raise ConfigError("--prompt: only text-to-image diffusion models take prompts")
    emb = np.asarray(embed_texts(prompts), dtype=np.float32)  # [N, D]
    with atomic_open(path, "wb") as fh:
        np.savez(fh, prompts=np.array(prompts), embeddings=emb)
