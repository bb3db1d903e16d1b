"""The model zoo: shipped, ready-to-use models by name (``muselab models list|card``).

A pretrained model is a folder holding ``model.safetensors`` (fp16 inference weights
whose metadata carries the resolved config), ``meta.json`` (name, recipe, sha256 of
the weights, one-line description, licence) and ``README.md`` (the model card).
Folders are searched in ``$MUSELAB_MODELS``, ``<data home>/models`` and the
checkout's ``models/``. Weights are sha256-checked before loading; nothing is
unpickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from muselab.errors import ConfigError, DataError, MuselabError
from muselab.io import data_home, ensure_dir, sha256_file, write_json

if TYPE_CHECKING:
    from muselab.image.pipeline import ImagePipeline

WEIGHTS, META, CARD = "model.safetensors", "meta.json", "README.md"


@dataclass(frozen=True)
class Pretrained:
    """One shipped model."""

    name: str
    path: Path  # the folder
    recipe: str
    sha256: str
    description: str
    licence: str

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def card(self) -> str:
        card = self.path / CARD
        return card.read_text("utf-8") if card.is_file() else f"# {self.name}\n\n(no card)\n"


def zoo_dirs() -> list[Path]:
    """Where pretrained models are looked for, first match wins."""
    dirs = [Path(p) for p in os.environ.get("MUSELAB_MODELS", "").split(os.pathsep) if p]
    dirs.append(data_home() / "models")
    checkout = Path(__file__).resolve().parents[3] / "models"
    if (checkout.parent / "pyproject.toml").is_file():
        dirs.append(checkout)
    return dirs


def list_pretrained() -> list[Pretrained]:
    """Every model found in :func:`zoo_dirs`, by name."""
    found: dict[str, Pretrained] = {}
    for root in zoo_dirs():
        for meta in sorted(root.glob(f"*/{META}")) if root.is_dir() else []:
            entry = _read_entry(meta)
            found.setdefault(entry.name, entry)
    return [found[k] for k in sorted(found)]


def find_pretrained(name: str) -> Pretrained:
    for entry in list_pretrained():
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in list_pretrained()) or "none installed"
    raise ConfigError(f"no pretrained model {name!r} (available: {names})")




def verify(entry: Pretrained) -> None:
    """Raise :class:`DataError` unless the weights match their recorded sha256."""
    if not entry.weights.is_file():
        raise DataError(f"{entry.weights} is missing")
    actual = sha256_file(entry.weights)
    if actual != entry.sha256:
        raise DataError(f"{entry.weights} is corrupt: sha256 {actual[:12]}... does not match "
                        f"{entry.sha256[:12]}... in {entry.path / META}; restore it from git")


def load_pipeline(name_or_path: str | Path, device: str = "auto", best: bool = False,
                  runs_dir: Path | None = None) -> ImagePipeline:
    """A pipeline for a ``model.safetensors`` file, a run (directory, number or name under
    ``runs_dir``) or a zoo name, in that order.

    Diffusion models get a :class:`~muselab.image.diffusion_pipeline.DiffusionPipeline`,
    GANs and VAEs an :class:`~muselab.image.pipeline.ImagePipeline`.
    """
    from muselab.train.rundir import find_run, runs_root

    path = Path(name_or_path)
    if not path.exists():
        names = {e.name: e for e in list_pretrained()}
        if str(name_or_path) in names:
            entry = names[str(name_or_path)]
            verify(entry)
            path = entry.weights
        else:
            try:
                path = find_run(str(name_or_path), runs_root(runs_dir))
            except MuselabError:
                raise ConfigError(
                    f"no model {str(name_or_path)!r}: not a file, a run under "
                    f"{runs_root(runs_dir)}, or a zoo model "
                    f"({', '.join(names) or 'none installed'}; muselab models list)"
                ) from None
    return pipeline_class(path).from_run(path, device=device, best=best)


def save_pretrained(pipe: ImagePipeline, folder: Path, *, name: str, description: str,
                    licence: str) -> Pretrained:
    """Write ``pipe``'s inference weights (EMA copies, fp16) and meta.json; the card is yours."""
    from muselab.train import checkpoint as ck

    ensure_dir(folder)
    task = pipe.task
    modules = {k: task.inference_module(k) for k in task.modules if not k.endswith("_ema")}
    config = {k: v for k, v in pipe.config.items() if k != "step"}
    ck.save_model(folder / WEIGHTS, modules, config, int(pipe.config.get("step", 0)),
                  dtype=torch.float16)
    return write_entry(folder, name=name, recipe=pipe.config["model"], description=description,
                       licence=licence, step=pipe.config.get("step"))


def write_entry(folder: Path, *, name: str, recipe: str, description: str, licence: str,
                step: int | None) -> Pretrained:
    """Write ``folder/meta.json`` for the weights already in ``folder`` (sha256 recorded)."""
    meta = {"name": name, "recipe": recipe, "sha256": sha256_file(folder / WEIGHTS),
            "description": description, "licence": licence, "step": step}
    write_json(folder / META, meta)
    return _read_entry(folder / META)


def pipeline_class(path: Path) -> type[ImagePipeline]:
    """DiffusionPipeline for diffusion runs and model files, else ImagePipeline."""
    from muselab.image.diffusion import RECIPES
    from muselab.image.diffusion_pipeline import DiffusionPipeline
    from muselab.image.pipeline import ImagePipeline
    from muselab.train.run import load_run_config

    weights = path / WEIGHTS if path.is_dir() else path
    if path.is_dir() and (path / "config.json").is_file():
        recipe = load_run_config(path)["model"]
    else:
        from muselab.train.checkpoint import read_metadata

        recipe = json.loads(read_metadata(weights).get("config", "{}")).get("model", "")
    return DiffusionPipeline if recipe in RECIPES else ImagePipeline


def _read_entry(meta: Path) -> Pretrained:
    try:
        raw: dict[str, Any] = json.loads(meta.read_text("utf-8"))
        return Pretrained(str(raw["name"]), meta.parent, str(raw["recipe"]), str(raw["sha256"]),
                          str(raw.get("description", "")), str(raw.get("licence", "")))
    except (OSError, ValueError, KeyError) as exc:
        raise MuselabError(f"{meta} is not a valid model entry: {exc}") from exc
