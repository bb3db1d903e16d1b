"""Start and resume training runs: resolve the config, load data, build the task.

The resolved config (``config.json`` in the run directory and inside every
``model.safetensors``) has four sections: ``model`` (a registered name),
``model_config`` (that model's dataclass, recipe defaults applied), ``data`` and
``train``; plus ``data_info`` (resolution, classes) so a model file can be sampled
without its data set.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from muselab import __version__
from muselab.config import build, check_choice, check_range, to_dict
from muselab.device import resolve_device
from muselab.errors import ConfigError, MuselabError
from muselab.io import write_json
from muselab.models.registry import ModelSpec, get_model
from muselab.train import checkpoint as ck
from muselab.train import ddp
from muselab.train.callbacks import Callback
from muselab.train.data import ImageBatches
from muselab.train.rundir import new_run_dir
from muselab.train.task import DataInfo, Task
from muselab.train.trainer import TrainConfig, Trainer

RESOLUTIONS = (8, 16, 32, 64, 128)
#: Informational keys of a saved config.json, ignored when it is read back.
_INFO_KEYS = {"data_info", "muselab_version", "created", "host"}


@dataclass
class DataConfig:
    """Which images to train on and how to prepare them."""

    source: str = "emoji"  # a built-in set (muselab data list) or a folder of images
    resolution: int = 32
    fit: Literal["crop", "pad"] = "crop"
    background: tuple[int, int, int] = (255, 255, 255)  # for transparent images
    limit: int | None = None  # use only the first N images (quick experiments)
    flip: bool = True  # random horizontal flips
    conditional: bool = False  # condition on the data set's class labels (emoji: category)
    text: bool = False  # condition on the data set's captions (text-to-image models)
    holdout: int = 0  # leave out this many images (a fixed seeded split, muselab.data.split)

    def __post_init__(self) -> None:
        check_choice("data.resolution", self.resolution, RESOLUTIONS)
        for c in self.background:
            check_range("data.background", c, 0, 255)
        if self.limit is not None:
            check_range("data.limit", self.limit, 1)
        check_range("data.holdout", self.holdout, 0)
        if self.text and self.conditional:
            raise ConfigError("data.text and data.conditional: choose one kind of condition")


@dataclass
class RunConfig:
    model: str
    model_config: Any
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self, data_info: DataInfo) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_config": to_dict(self.model_config),
            "data": to_dict(self.data),
            "train": to_dict(self.train),
            "data_info": _saved_info(data_info),
            "muselab_version": __version__,
        }


def _saved_info(info: DataInfo) -> dict[str, Any]:
    saved = {k: v for k, v in dataclasses.asdict(info).items() if k != "captions"}
    return {**saved, "num_captions": len(info.captions)}


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` into ``base`` (tables merge, everything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def resolve_config(
    model: str | None = None,
    file: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Recipe defaults <- config file <- command-line overrides, checked once here.

    ``file`` and ``overrides`` have the config.json shape (``model``, ``model_config``,
    ``data``, ``train``).
    """
    raw = merge(file or {}, overrides or {})
    unknown = sorted(set(raw) - {"model", "model_config", "data", "train"} - _INFO_KEYS)
    if unknown:
        raise ConfigError(f"config: unknown section {unknown[0]!r} "
                          "(sections: model, model_config, data, train)")
    name = model or raw.get("model")
    if not name:
        raise ConfigError("config: no model given (muselab models lists them)")
    spec = get_model(str(name))
    model_config: Any = build(spec.config_cls, merge(spec.defaults, raw.get("model_config", {})),
                              source="model_config")
    data = dict(raw.get("data", {}))
    corpus = getattr(model_config, "corpus", None)  # a language-model recipe's own corpus
    if "source" not in data and corpus:
        data["source"] = str(corpus)
    return RunConfig(
        model=spec.name,
        model_config=model_config,
        data=build(DataConfig, data, source="data"),
        train=build(TrainConfig, merge(spec.train_defaults, raw.get("train", {})), source="train"),
    )


def build_task(spec: ModelSpec, model_config: Any, info: DataInfo, seed: int,
               device: torch.device) -> Task:
    """Build the task with weights initialised from ``seed`` (global RNG, then reseeded)."""
    torch.manual_seed(seed)
    return spec.build(model_config, info).to(device)


def start_run(
    cfg: RunConfig,
    runs_root: Path,
    callbacks: list[Callback] | None = None,
) -> Trainer:
    """A fresh numbered run directory, config written, ready to :meth:`Trainer.fit`."""
    task, data, info, task_callbacks = _prepare(cfg)
    cfg = dataclasses.replace(cfg, model_config=task.config)
    config = cfg.to_dict(info)
    world = ddp.current()
    run_dir = None
    if world.is_main:  # rank 0 makes the run directory; the other ranks use it
        run_dir = new_run_dir(runs_root, f"{cfg.model}-{_data_tag(cfg.data)}")
        write_json(run_dir / "config.json", {**config, "host": _host(),
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    run_dir = ddp.broadcast_object(run_dir, world)
    assert run_dir is not None
    return Trainer(task, data, cfg.train, run_dir, config,
                   task_callbacks if callbacks is None else callbacks)


def resume_run(
    run_dir: Path,
    steps: int | None = None,
    callbacks: list[Callback] | None = None,
    train_overrides: Mapping[str, Any] | None = None,
) -> Trainer:
    """Continue ``run_dir`` from its latest checkpoint, exactly; ``steps`` may extend it.

    Only settings that do not change the optimisation may be overridden
    (``steps``, logging and sampling cadence, progress, device threads).
    """
    saved = load_run_config(run_dir)
    allowed = {"steps", "log_every", "sample_every", "sample_n", "checkpoint_every", "keep_last",
               "progress", "tensorboard", "metric_every", "threads", "max_minutes"}
    extra = dict(train_overrides or {})
    if steps is not None:
        extra["steps"] = steps
    bad = sorted(set(extra) - allowed)
    if bad:
        raise ConfigError(f"--resume: train.{bad[0]} cannot change when resuming "
                          "(it would change the result); start a new run instead")
    cfg = resolve_config(overrides=merge(saved, {"train": extra}))
    task, data, info, task_callbacks = _prepare(cfg)
    config = cfg.to_dict(info)
    trainer = Trainer(task, data, cfg.train, run_dir, config,
                      task_callbacks if callbacks is None else callbacks)
    latest = trainer.latest_checkpoint()
    if latest is None:
        raise MuselabError(f"run {run_dir} has no complete checkpoint to resume from")
    trainer.load_checkpoint(latest)
    if trainer.step >= cfg.train.steps:
        raise ConfigError(f"run {run_dir} is already at step {trainer.step}; pass --steps larger "
                          f"than {trainer.step} to train further")
    if trainer.world.is_main:
        write_json(run_dir / "config.json", {**saved, "train": config["train"]})
    return trainer


def _prepare(cfg: RunConfig) -> tuple[Task, ImageBatches, DataInfo, list[Callback] | None]:
    """Threads, device, data and the freshly initialised task of ``cfg``.

    The last item is the task's own default callbacks (None: the Trainer's image set).
    A ``data.source`` naming a token corpus (:mod:`muselab.train.lm`) gives a language
    model run: token batches, held-out loss instead of SWD, no image samples.
    """
    from muselab.train import lm

    _set_threads(cfg.train.threads)
    world, device = ddp.setup(resolve_device(cfg.train.device))  # torchrun: join the ranks
    ddp.check_batch(cfg.train.batch_size, world)
    if lm.is_token_source(cfg.data.source):
        spec, seed = get_model(cfg.model), cfg.train.seed
        task, batches, info, cbs = lm.prepare_lm(
            cfg.data.source, cfg.data.limit, cfg.train, device,
            lambda info: build_task(spec, cfg.model_config, info, seed, device))
        return task, cast(ImageBatches, batches), info, cbs  # the Trainer only calls .batch()
    images, labels, info = _load_data(cfg.data)
    _check_batch(cfg, len(images))
    task = build_task(get_model(cfg.model), cfg.model_config, info, cfg.train.seed, device)
    data = ImageBatches(images, labels, cfg.train.batch_size, cfg.train.seed,
                        flip=cfg.data.flip, device=device)
    return task, data, info, None


def load_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise MuselabError(f"{run_dir} is not a muselab run (no config.json)")
    return json.loads(path.read_text())


def load_task(model_file: Path, device: str = "auto") -> tuple[Task, dict[str, Any]]:
    """A trained task (for sampling) from a ``model.safetensors`` or a run directory."""
    path = model_file / ck.MODEL_FILE if model_file.is_dir() else model_file
    meta = ck.read_metadata(path)
    if "config" not in meta:
        raise MuselabError(f"{path} has no muselab config in its metadata")
    config = json.loads(meta["config"])
    cfg = resolve_config(overrides=config)
    saved = config["data_info"]
    info = DataInfo(resolution=int(saved["resolution"]), channels=int(saved["channels"]),
                    num_classes=int(saved["num_classes"]),
                    class_names=tuple(saved["class_names"]))
    task = build_task(get_model(cfg.model), cfg.model_config, info, cfg.train.seed,
                      resolve_device(device))
    if any(key.startswith(f"{task.ema_source}_ema.") for key in _tensor_names(path)):
        task.add_ema()
    ck.load_model(path, task.modules)
    for module in task.modules.values():
        module.eval()
    config["step"] = int(meta.get("step", 0))
    return task, config


def _tensor_names(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return list(fh.keys())


def _load_data(cfg: DataConfig) -> tuple[Any, Any, DataInfo]:
    from muselab.data import holdout_split, load_images

    ds = load_images(cfg.source, cfg.resolution, fit=cfg.fit, background=cfg.background,
                     limit=cfg.limit)
    if cfg.conditional and ds.labels is None:
        raise ConfigError(f"data.conditional: data set {cfg.source!r} has no class labels")
    if cfg.text and ds.captions is None:
        raise ConfigError(f"data.text: data set {cfg.source!r} has no captions")
    if cfg.holdout >= len(ds.images):
        raise ConfigError(f"data.holdout={cfg.holdout} leaves no training images "
                          f"({len(ds.images)} in {cfg.source!r})")
    keep, _ = holdout_split(len(ds.images), cfg.holdout)
    images = ds.images[keep]
    captions = tuple(ds.captions[i] for i in keep) if cfg.text and ds.captions else ()
    labels = ds.labels[keep] if cfg.conditional and ds.labels is not None else None
    if cfg.text:
        labels = np.arange(len(images))  # caption ids
    info = DataInfo(resolution=cfg.resolution, channels=ds.images.shape[3],
                    num_classes=len(ds.class_names) if cfg.conditional else 0,
                    class_names=tuple(ds.class_names) if cfg.conditional else (),
                    captions=captions)
    return images, labels, info


def _check_batch(cfg: RunConfig, n: int) -> None:
    if cfg.train.metric_every and cfg.train.metric_n > n:
        raise ConfigError(f"train.metric_n={cfg.train.metric_n} is larger than the data set "
                          f"({n} images); lower it or set train.metric_every=0")


def _data_tag(cfg: DataConfig) -> str:
    name = Path(cfg.source).name if ("/" in cfg.source or "\\" in cfg.source) else cfg.source
    from muselab.train.lm import TOKENS_SUFFIX, is_token_source

    if is_token_source(cfg.source):
        return name.removesuffix(TOKENS_SUFFIX)  # token corpora have no resolution
    return f"{name}{cfg.resolution}"


def _set_threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)


def _host() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}
