"""Train the image or music encoder of the shared space on the one Trainer.

``python -m muselab.crossmodal.train image --steps 3000`` (or ``music``) makes a run in
``runs/NNNNN-crossmodal-KIND`` (``--resume RUN`` continues it exactly). The Task owns the
encoder, the learnable temperature and the frozen MiniLM embeddings of the training texts;
a batch is (items, text ids). Checkpoints are safetensors with the config (kind, encoder
config, thresholds, data) in their metadata, so :func:`muselab.crossmodal.space.load_encoder`
rebuilds the network without any code in the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab import __version__
from muselab.config import build, check_range, to_dict
from muselab.crossmodal.encoders import (
    ImageEncoder,
    ImageEncoderConfig,
    MusicEncoder,
    MusicEncoderConfig,
    Temperature,
    info_nce,
)
from muselab.errors import ConfigError
from muselab.train.task import Batch, Task


@dataclasses.dataclass
class ContrastiveConfig:
    """Optimiser settings (AdamW, cosine decay; CLIP, Radford et al. 2021)."""

    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 100

    def __post_init__(self) -> None:
        check_range("lr", self.lr, 1e-6, 1.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("warmup", self.warmup, 0)


def build_encoder(kind: str, cfg: dict[str, Any]) -> nn.Module:
    """The encoder network of ``kind`` from its config mapping (checked once here)."""
    if kind == "image":
        return ImageEncoder(build(ImageEncoderConfig, cfg, source="encoder"))
    if kind == "music":
        return MusicEncoder(build(MusicEncoderConfig, cfg, source="encoder"))
    raise ConfigError(f"encoder kind {kind!r} is not one of: image, music")


class ContrastiveTask(Task):
    """InfoNCE between encoded items and the frozen MiniLM embeddings of their texts."""

    def __init__(self, encoder: nn.Module, text_emb: np.ndarray, cfg: ContrastiveConfig,
                 steps: int) -> None:
        super().__init__()
        self.config, self.steps = cfg, steps
        self.encoder, self.temperature = encoder, Temperature()
        self.text_emb = torch.from_numpy(text_emb)  # [M, 384] unit norm, frozen
        self.modules = {"encoder": encoder, "temperature": self.temperature}
        params = [*encoder.parameters(), *self.temperature.parameters()]
        self.optimizers = {"encoder": torch.optim.AdamW(params, lr=cfg.lr,
                                                        weight_decay=cfg.weight_decay)}

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 5 % (Loshchilov & Hutter 2017)."""
        c = self.config
        if step < c.warmup:
            return c.lr * (step + 1) / c.warmup
        t = (step - c.warmup) / max(1, self.steps - c.warmup)
        return c.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def loss(self, batch: Batch) -> Tensor:
        assert batch.labels is not None
        x = F.normalize(self.encoder(batch.images), dim=1)  # [B, 384]
        t = self.text_emb[batch.labels]  # [B, 384]
        return info_nce(x, t, batch.labels, self.temperature())

    def train_step(self, batch: Batch, step: int, generator: torch.Generator) -> dict[str, Tensor]:
        opt = self.optimizers["encoder"]
        for group in opt.param_groups:
            group["lr"] = self.lr_at(step)
        loss = self.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "scale": self.temperature().detach()}

    def sample(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        raise NotImplementedError("an encoder does not sample")

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError("an encoder does not sample")


class TokenBatches:
    """Deterministic batches of token rows, order a function of (seed, step) as in
    :class:`muselab.train.data.ImageBatches` (which the image encoder uses)."""

    def __init__(self, tokens: np.ndarray, labels: np.ndarray, batch_size: int,
                 seed: int) -> None:
        self.device = torch.device("cpu")
        self.tokens, self.labels = torch.from_numpy(tokens), torch.from_numpy(labels)
        self.batch_size, self.seed = batch_size, seed
        self.steps_per_epoch = max(1, len(tokens) // batch_size)

    def batch(self, step: int) -> Batch:
        epoch, i = divmod(step, self.steps_per_epoch)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        idx = torch.randperm(len(self.tokens), generator=g)[i * self.batch_size :
                                                           (i + 1) * self.batch_size]
        return Batch(self.tokens[idx], self.labels[idx])


@dataclasses.dataclass
class SpaceRun:
    """Everything a run needs, built from its config."""

    task: ContrastiveTask
    data: Any
    config: dict[str, Any]


def prepare(config: dict[str, Any]) -> SpaceRun:
    """Data, texts and task of a run config (``kind``, ``encoder``, ``optim``, ``train``)."""
    from muselab.crossmodal.space import embed_text, holdout_groups, image_pairs, music_pairs
    from muselab.train.data import ImageBatches

    kind, train = config["kind"], config["train"]
    encoder_cfg = dict(config.get("encoder", {}))
    torch.manual_seed(int(train["seed"]))
    encoder = build_encoder(kind, encoder_cfg)
    config = {**config, "encoder": to_dict(cast(Any, encoder).cfg)}
    if kind == "image":
        pairs = image_pairs(config["encoder"]["resolution"])
        keep, held = holdout_groups(pairs)
        pairs = pairs.subset(keep)
        config["data"] = {"sets": sorted(set(pairs.sources)), "train_items": len(keep),
                          "held_out_items": len(held)}
    else:
        pairs, th = music_pairs("train", config["encoder"]["max_tokens"])
        config["thresholds"] = th
        config["data"] = {"corpora": sorted(set(pairs.sources)), "train_items": len(pairs.texts)}
    texts = sorted(set(pairs.texts))
    index = {t: i for i, t in enumerate(texts)}
    labels = np.array([index[t] for t in pairs.texts], dtype=np.int64)
    config["data"]["texts"] = len(texts)
    limit = train.get("limit")
    if limit:  # a quick run on the first items (tests)
        pairs, labels = pairs.subset(np.arange(min(limit, len(labels)))), labels[:limit]
    bs, seed = int(train["batch_size"]), int(train["seed"])
    data: Any = (ImageBatches(pairs.items, labels, bs, seed, flip=True) if kind == "image"
                 else TokenBatches(pairs.items, labels, bs, seed))
    optim = build(ContrastiveConfig, config.get("optim", {}), source="optim")
    task = ContrastiveTask(encoder, embed_text(texts), optim, int(train["steps"]))
    return SpaceRun(task, data, {**config, "optim": to_dict(optim),
                                 "muselab_version": __version__})


def train_space(kind: str, *, steps: int, batch_size: int = 256, seed: int = 0,
                runs: Path | None = None, resume: Path | None = None, limit: int | None = None,
                encoder: dict[str, Any] | None = None, progress: bool = True,
                checkpoint_every: int = 250) -> Path:
    """Train (or ``resume``) an encoder run; returns the run directory."""
    from muselab.io import write_json
    from muselab.train.callbacks import Checkpoint, ProgressBar, ScalarLog
    from muselab.train.run import load_run_config
    from muselab.train.rundir import new_run_dir, runs_root
    from muselab.train.trainer import TrainConfig, Trainer

    if resume is not None:
        config = load_run_config(resume)
        config["train"]["steps"] = steps
    else:
        check_range("steps", steps, 1)
        config = {"kind": kind, "encoder": encoder or {}, "optim": {},
                  "train": {"steps": steps, "batch_size": batch_size, "seed": seed,
                            "limit": limit}}
    run = prepare(config)
    train = config["train"]
    tcfg = TrainConfig(steps=int(train["steps"]), batch_size=int(train["batch_size"]),
                       seed=int(train["seed"]), device="cpu", sample_every=0,
                       checkpoint_every=checkpoint_every, metric_every=0, ema_decay=0.0,
                       tensorboard=False, progress=progress)
    callbacks = [Checkpoint(checkpoint_every, 2), ScalarLog(50)]
    if progress:
        callbacks.append(ProgressBar())
    run_dir = resume or new_run_dir(runs or runs_root(), f"crossmodal-{kind}")
    write_json(run_dir / "config.json", run.config)
    trainer = Trainer(run.task, run.data, tcfg, run_dir, run.config, callbacks)
    if resume is not None:
        latest = trainer.latest_checkpoint()
        if latest is not None:
            trainer.load_checkpoint(latest)
    trainer.fit()
    return run_dir


def ship_encoder(run: Path, folder: Path, *, description: str) -> Path:
    """Write ``run``'s encoder as fp16 safetensors + meta.json into ``folder`` (the model
    card, README.md, is written by hand); the shipped name is the folder's name."""
    from muselab.crossmodal.space import load_encoder
    from muselab.io import ensure_dir
    from muselab.models.zoo import WEIGHTS, write_entry
    from muselab.train.checkpoint import save_model

    kind = str(load_run_config_any(run)["kind"])
    encoder, config = load_encoder(kind, run)
    step = int(config.pop("step") or 0)
    config.pop("path", None)
    ensure_dir(folder)
    save_model(folder / WEIGHTS, {"encoder": encoder}, config, step, dtype=torch.float16)
    write_entry(folder, name=folder.name, recipe=f"crossmodal-{kind}", description=description,
                licence="weights: same terms as muselab; data licences in docs/crossmodal.md",
                step=step)
    return folder


def load_run_config_any(path: Path) -> dict[str, Any]:
    """The config of a run folder or of a model file (its safetensors metadata)."""
    import json

    from muselab.train.checkpoint import MODEL_FILE, read_metadata

    file = path / MODEL_FILE if path.is_dir() else path
    return cast(dict[str, Any], json.loads(read_metadata(file)["config"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("image", "music", "ship"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", type=Path, default=None, help="run to continue or ship")
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--to", type=Path, default=None, help="ship: the models/ folder")
    parser.add_argument("--description", default="")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.kind == "ship":
        if args.resume is None or args.to is None:
            parser.error("ship needs --resume RUN and --to FOLDER")
        print(ship_encoder(args.resume, args.to, description=args.description))
        return
    run = train_space(args.kind, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                      runs=args.runs, resume=args.resume)
    print(run)


if __name__ == "__main__":
    main()
