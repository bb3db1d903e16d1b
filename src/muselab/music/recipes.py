"""Music training recipes, corpora and transposition augmentation for the ONE Trainer.

Registered here (imported through :data:`muselab.models.registry._BUILTIN_MODULES`):

* corpora ``bach-chorales`` and ``essen-folk`` (:mod:`muselab.music.corpus`);
* the window transform ``music-transpose``: every training window is transposed by a
  random number of semitones in -5..+6 that keeps all its notes in range, key token
  included (transposition augmentation, as in Huang et al. 2019, "Music Transformer");
* recipes ``music-bach`` and ``music-folk``: a small :class:`Transformer` language model
  on the tokens of :mod:`muselab.music.tokens`.

Nothing here imports music21: a ``.tokens.npz`` cache trains without it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from muselab.models.registry import register_model
from muselab.music.corpus import corpus_loader
from muselab.music.tokens import BOS, VOCAB, transpose_table
from muselab.train.lm import (
    LMConfig,
    LMTask,
    build_lm,
    register_corpus,
    register_transform,
)
from muselab.train.task import DataInfo

register_corpus("bach-chorales")(corpus_loader("bach-chorales"))
register_corpus("essen-folk")(corpus_loader("essen-folk"))

_TABLE: Tensor | None = None


@register_transform("music-transpose")
def transpose_windows(windows: Tensor, generator: torch.Generator) -> Tensor:
    """Transpose each window [B, T + 1] by its own random in-range shift (-5..+6)."""
    global _TABLE
    if _TABLE is None:
        _TABLE = torch.from_numpy(transpose_table())  # [12, V]
    mapped = _TABLE[:, windows]  # [12, B, T + 1]
    ok = (mapped >= 0).all(dim=2).T  # [B, 12] shifts that keep every note in range
    score = torch.rand(ok.shape, generator=generator).masked_fill(~ok, -1.0)
    shift = score.argmax(dim=1)  # [B]; shift 0 (row 5) is always allowed
    return mapped[shift, torch.arange(len(windows))]  # [B, T + 1]


#: The network of both recipes: 6 layers x 256 wide, 512-token context (about 12 bars of
#: four-part chorale), rotary positions, dropout 0.2; 4.8 M parameters, 9.7 MB in fp16.
#: Chosen on the held-out loss of four short H200 runs (docs/music.md).
MUSIC_NET = {"vocab_size": len(VOCAB), "block_size": 512, "n_layer": 6, "n_head": 4,
             "n_embd": 256, "dropout": 0.2, "rope": True, "tie_weights": True}
MUSIC_LM = {"net": MUSIC_NET, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 200,
            "decay_steps": 2000, "weight_decay": 0.1, "bos_token": BOS}
MUSIC_TRAIN = {"steps": 2000, "batch_size": 32, "ema_decay": 0.0, "metric_every": 200,
               "metric_n": 128, "checkpoint_every": 200, "keep_last": 2, "log_every": 50}


@register_model(
    "music-folk",
    config=LMConfig,
    description="Transformer LM on Essen folk songs (REMI-like tokens, transposition)",
    defaults={**MUSIC_LM, "corpus": "essen-folk"},
    train_defaults=MUSIC_TRAIN,
)
@register_model(
    "music-bach",
    config=LMConfig,
    description="Transformer LM on the Bach chorales (four voices, transposition); "
                "models/bach-chorale",
    defaults={**MUSIC_LM, "corpus": "bach-chorales"},
    train_defaults=MUSIC_TRAIN,
)
def build_music(cfg: LMConfig, data: DataInfo) -> LMTask:
    return build_lm(cfg, data)


def export_model(model_file: Path, folder: Path, name: str = "bach-chorale",
                 description: str = "", licence: str = "") -> Path:
    """Ship ``model_file`` (a run's best checkpoint) as fp16 ``folder/model.safetensors``
    plus ``meta.json`` (name, recipe, sha256) for :mod:`muselab.models.zoo`."""
    import json

    from safetensors.torch import load_file, save_file

    from muselab.io import atomic_write, ensure_dir
    from muselab.models.zoo import WEIGHTS, write_entry
    from muselab.train.checkpoint import read_metadata

    meta = read_metadata(model_file)
    tensors = {k: v.half() if v.is_floating_point() else v
               for k, v in load_file(str(model_file)).items() if k.startswith("lm.")}
    ensure_dir(folder)
    atomic_write(folder / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata=meta))
    config = json.loads(meta["config"])
    write_entry(folder, name=name, recipe=config["model"], description=description,
                licence=licence, step=int(meta.get("step", 0)))
    return folder / WEIGHTS
