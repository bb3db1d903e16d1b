"""Tiny, fast training configs on the offline ``digits`` set, shared by the tests."""

from __future__ import annotations

from typing import Any

from muselab.train.run import RunConfig, merge, resolve_config

TINY_NETS = {
    "gan": {"g_width": 8, "d_width": 8, "max_width": 32, "z_dim": 16},
    "vae": {"width": 8, "max_width": 32, "latent_dim": 16},
    "unet": {"base": 8, "mult": [1, 2], "blocks": 1, "attn_res": [8], "heads": 2},
    "ae": {"base": 8, "mult": [1, 2], "disc_width": 8},
}
#: Extra model_config of tiny diffusion recipes: cheap sample grids.
TINY_DIFFUSION = {"sample_steps": 3, "warmup": 0}


def _tiny_model_config(model: str) -> dict[str, Any]:
    if "diffusion" in model:
        return {"net": TINY_NETS["unet"], **TINY_DIFFUSION}
    if model == "autoencoder":
        return {"net": TINY_NETS["ae"], "disc_start": 2}
    return {"net": TINY_NETS["vae" if model == "vae" else "gan"]}


def tiny_overrides(steps: int = 6, model: str = "hinge-gan", **train: Any) -> dict[str, Any]:
    return {
        "model_config": _tiny_model_config(model),
        "data": {"source": "digits", "resolution": 32, "limit": 64},
        "train": {"steps": steps, "batch_size": 16, "metric_n": 32, "metric_every": 3,
                  "sample_every": 3, "sample_n": 4, "checkpoint_every": 2, "keep_last": 2,
                  "log_every": 1, "progress": False, "tensorboard": False, **train},
    }


def tiny_config(model: str = "hinge-gan", steps: int = 6, extra: dict[str, Any] | None = None,
                **train: Any) -> RunConfig:
    overrides = merge(tiny_overrides(steps, model, **train), extra or {})
    return resolve_config(model, overrides=overrides)
