"""Generate from a trained run: seeds in, images (with provenance) out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from muselab import __version__
from muselab.errors import MuselabError
from muselab.image.latent import walk
from muselab.train.data import to_uint8
from muselab.train.task import Task


@dataclass
class ImagePipeline:
    """A trained image model ready to sample. Each image is a pure function of its seed."""

    task: Task
    config: dict[str, Any]
    source: Path
    run_name: str

    @classmethod
    def from_run(cls, run: Path, device: str = "auto", best: bool = False) -> ImagePipeline:
        """Load ``run``'s latest weights (``best=True``: its best by the quality metric)."""
        from muselab.train.run import load_task

        path = run
        if run.is_dir():
            path = run / "best" / "model.safetensors" if best else run / "model.safetensors"
        if not path.is_file():
            hint = " (no best checkpoint yet)" if best else ""
            raise MuselabError(f"no weights at {path}{hint}")
        task, config = load_task(path, device)
        return cls(task, config, path, run.name if run.is_dir() else path.parent.name)

    @classmethod
    def from_pretrained(cls, name: str, device: str = "auto") -> ImagePipeline:
        """A shipped model by name (``muselab models list``), sha256-checked."""
        from muselab.models.zoo import load_pipeline

        return load_pipeline(name, device=device)

    def save_pretrained(self, folder: Path, *, name: str, description: str = "",
                        licence: str = "") -> Path:
        """Write fp16 inference weights + meta.json into ``folder`` (a zoo entry)."""
        from muselab.models.zoo import save_pretrained

        return save_pretrained(self, folder, name=name, description=description,
                               licence=licence).path

    @property
    def class_names(self) -> list[str]:
        return list(self.config.get("data_info", {}).get("class_names", []))

    def latents(self, seeds: list[int]) -> Tensor:
        """One latent per seed, drawn on the CPU so seeds mean the same on every device."""
        return torch.cat([self.task.sample_z(1, torch.Generator().manual_seed(s)) for s in seeds])

    def label_ids(self, n: int, label: str | None) -> Tensor | None:
        names = self.class_names
        if not names:
            if label is not None:
                raise MuselabError(f"--class {label!r}: this model is not class-conditional")
            return None
        if label is None:
            return torch.arange(n) % len(names)
        if label not in names:
            raise MuselabError(f"--class {label!r} is not one of: {', '.join(names)}")
        return torch.full((n,), names.index(label), dtype=torch.long)

    @torch.no_grad()
    def decode(self, z: Tensor, labels: Tensor | None = None, batch: int = 128) -> np.ndarray:
        """Latents [N, Z] -> uint8 images [N, H, W, C]."""
        device = self.task.device
        out = []
        for i in range(0, len(z), batch):
            y = None if labels is None else labels[i : i + batch].to(device)
            out.append(to_uint8(self.task.sample(z[i : i + batch].to(device), y)))
        return np.concatenate(out)

    def generate(self, seeds: list[int], label: str | None = None) -> np.ndarray:
        return self.decode(self.latents(seeds), self.label_ids(len(seeds), label))

    def interpolate(self, seeds: list[int], frames: int, loop: bool = False,
                    label: str | None = None) -> np.ndarray:
        """A slerp walk through the seeds' latents: uint8 [T, H, W, C]."""
        path = walk(self.latents(seeds), frames, loop=loop)  # [T, Z]
        return self.decode(path, self.label_ids(len(path), label))

    def provenance(self, **extra: Any) -> dict[str, Any]:
        return {"model": self.config.get("model"), "run": self.run_name,
                "step": self.config.get("step"), "muselab_version": __version__,
                "weights": str(self.source), **extra}
