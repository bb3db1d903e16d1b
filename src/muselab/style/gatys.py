"""Neural style transfer by optimising the pixels (Gatys, Ecker & Bethge 2016).

The image ``x`` minimises ``w_c L_content + w_s L_style + w_tv L_tv`` where, over the
feature maps ``F_l(x)`` of a frozen backbone:

- ``L_content = ||F_l(x) - F_l(content)||^2`` on the content layer(s),
- ``L_style = sum_l ||G_l(x) - G_l(style)||^2`` with Gram matrices
  ``G_l = F_l F_l^T / (C H W)`` on the style layers (Gatys 2016 eq. 3-5),
- ``L_tv``: total variation (Mahendran & Vedaldi 2015; Johnson 2016), against noise.

Each term is divided by the squared norm of its target, so the same weights work for every
backbone (their feature scales differ by orders of magnitude); this is a normalisation,
not a change to the optimum for one backbone. Optimisers: L-BFGS (as in Gatys 2016) or Adam
(Kingma & Ba 2015). Coarse to fine (``scales``): the result at half size initialises the
next scale (as in Gatys et al. 2017, "Controlling perceptual factors"), which captures large
structures cheaply.

Backbones come from :func:`muselab.models.backbones.load_backbone`; the layers used for
each are the backbone's ``style_layers`` and ``content_layers`` (docs/style.md lists them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muselab.config import check_choice, check_range
from muselab.errors import ConfigError
from muselab.style.common import (
    ColorMode,
    ImageLike,
    check_alpha,
    check_color,
    finish,
    fit_long_side,
    match_colours,
    read_image,
    resize,
    style_weights,
    to_float,
)


class FeatureNet(Protocol):
    """The part of :class:`muselab.models.backbones.Backbone` that style transfer uses."""

    name: str
    layers: tuple[str, ...]

    def __call__(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]: ...


def spread_layers(layers: Sequence[str], n_style: int = 5) -> tuple[tuple[str, ...],
                                                                    tuple[str, ...]]:
    """``n_style`` layers spread evenly over the first 80% of ``layers`` (early layers carry
    fine texture, later ones larger patterns) and the layer at 50% depth for content."""
    if not layers:
        raise ConfigError("backbone exposes no feature layers")
    usable = list(layers[: max(1, math.ceil(0.8 * len(layers)))])
    n = min(n_style, len(usable))
    idx = sorted({round(i * (len(usable) - 1) / max(1, n - 1)) for i in range(n)})
    return tuple(usable[i] for i in idx), (layers[len(layers) // 2],)


def layers_for(net: FeatureNet) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The style and content layers used with ``net``: the backbone's own choice
    (``Backbone.style_layers`` / ``content_layers``, listed in docs/style.md), else
    :func:`spread_layers`."""
    style = tuple(getattr(net, "style_layers", ()) or ())
    content = tuple(getattr(net, "content_layers", ()) or ())
    if style and content:
        return style, content
    return spread_layers(net.layers)


@dataclass
class GatysOptions:
    """Settings of one optimisation (each cites its source in the module docstring)."""

    backbone: str = "random"  # the best of the in-house choices here (docs/style.md)
    backbone_weights: str | None = None
    size: int = 384  # long side of the result
    style_scale: float = 1.0  # style image long side relative to ``size``
    scales: int = 2  # coarse-to-fine levels, each twice the previous size
    steps: int = 150  # optimiser iterations per scale
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = 0.02  # Adam step in [0, 1] pixel units (L-BFGS uses 1 with line search)
    content_weight: float = 1.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    init: Literal["content", "noise"] = "content"
    alpha: float = 0.0  # the seed's blend on pixels; 1 keeps the content
    color: ColorMode = "none"
    seed: int = 0
    device: str = "auto"
    style_layers: tuple[str, ...] = ()  # empty: the backbone's own (layers_for)
    content_layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_range("--size", self.size, 32, 4096)
        check_range("--style-scale", self.style_scale, 0.1, 4.0)
        check_range("--scales", self.scales, 1, 5)
        check_range("--steps", self.steps, 1, 100000)
        check_choice("--optimizer", self.optimizer, ("lbfgs", "adam"))
        check_range("--lr", self.lr, 1e-6, 10.0)
        for name in ("content_weight", "style_weight", "tv_weight"):
            check_range(f"--{name.replace('_', '-')}", getattr(self, name), 0.0)
        check_choice("--init", self.init, ("content", "noise"))
        check_alpha(self.alpha)
        check_color(self.color)
        if self.size / 2 ** (self.scales - 1) < 32:
            raise ConfigError(f"--scales {self.scales} makes the coarsest level smaller than "
                              f"32 px at --size {self.size}")


def gram(f: Tensor) -> Tensor:
    """Gram matrix of features [B, C, H, W] -> [B, C, C], normalised by C*H*W."""
    b, c, h, w = f.shape
    x = f.reshape(b, c, h * w)
    return x @ x.transpose(1, 2) / (c * h * w)


def tv_loss(x: Tensor) -> Tensor:
    """Total variation: mean squared difference of neighbouring pixels of [B, C, H, W]."""
    return ((x[:, :, 1:] - x[:, :, :-1]) ** 2).mean() + ((x[..., 1:] - x[..., :-1]) ** 2).mean()


def relative_error(a: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``||a_i - t_i||^2 / ||t_i||^2`` (independent of feature scale).

    ``a`` [B, ...]; ``target`` [B, ...] or [1, ...] (broadcast).
    """
    num = (a - target).pow(2).flatten(1).sum(1)  # [B]
    den = target.pow(2).flatten(1).sum(1) + 1e-12  # [B] or [1]
    return (num / den).mean()


def style_grams(net: FeatureNet, styles: Sequence[Tensor], weights: Sequence[float],
                layers: Sequence[str]) -> dict[str, Tensor]:
    """The weighted mix of the styles' Gram matrices per layer, each [1, C, C]."""
    grams: dict[str, Tensor] = {}
    with torch.no_grad():
        for s, ws in zip(styles, weights, strict=True):
            for k, v in net(s, layers).items():
                grams[k] = grams[k] + ws * gram(v) if k in grams else ws * gram(v)
    return grams


def perceptual_loss(feats: dict[str, Tensor], content: dict[str, Tensor],
                    grams: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(content loss, style loss) of the features of ``x`` against the targets."""
    lc = sum((relative_error(feats[k], t) for k, t in content.items()), torch.zeros(()))
    ls = sum((relative_error(gram(feats[k]), t) for k, t in grams.items()), torch.zeros(()))
    return lc, ls


class StyleLoss(nn.Module):
    """Content + Gram style + TV loss against fixed targets (Gatys 2016)."""

    def __init__(self, net: FeatureNet, content: Tensor, styles: Sequence[Tensor],
                 weights: Sequence[float], style_layers: Sequence[str],
                 content_layers: Sequence[str], w: tuple[float, float, float]) -> None:
        super().__init__()
        self.net, self.w = net, w
        self.style_layers, self.content_layers = tuple(style_layers), tuple(content_layers)
        with torch.no_grad():
            c_feats = net(content, self.content_layers)
        self.content_targets = {k: v.detach() for k, v in c_feats.items()}
        self.gram_targets = style_grams(net, styles, weights, self.style_layers)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        feats = self.net(x, self.style_layers + self.content_layers)
        lc, ls = perceptual_loss(feats, self.content_targets, self.gram_targets)
        ltv = tv_loss(x)
        wc, ws, wtv = self.w
        total = wc * lc + ws * ls + wtv * ltv
        parts = {"content": float(lc.detach()), "style": float(ls.detach()),
                 "tv": float(ltv.detach())}
        return total, parts


def load_feature_net(name: str, weights: str | Path | None, device: str) -> nn.Module:
    """``load_backbone(name, weights=..., device=...)``, frozen and in eval mode."""
    from muselab.models.backbones import load_backbone

    net = load_backbone(name, weights=weights, device=device)
    net.eval().requires_grad_(False)
    return net


def _tensor(img: np.ndarray, device: torch.device) -> Tensor:
    """float [H, W, 3] -> [1, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(device)


def _scaled(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    return resize(img, (max(32, round(w * s)), max(32, round(h * s))))


Progress = Callable[[int, int, dict[str, float]], None]


def optimise(loss_fn: StyleLoss, x0: Tensor, opt: GatysOptions,
             progress: Progress | None = None) -> tuple[Tensor, list[float]]:
    """Run ``opt.steps`` iterations from ``x0`` [1, 3, H, W]; the image and the loss curve."""
    x = x0.clone().requires_grad_(True)
    history: list[float] = []
    if opt.optimizer == "adam":
        adam = torch.optim.Adam([x], lr=opt.lr)
        for i in range(opt.steps):
            adam.zero_grad(set_to_none=True)
            loss, adam_parts = loss_fn(x)
            loss.backward()
            adam.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            history.append(float(loss.detach()))
            if progress:
                progress(i + 1, opt.steps, adam_parts)
        return x.detach(), history
    # L-BFGS keeps its curvature history within one step() call: run it in chunks of
    # ``chunk`` iterations (a call with max_iter=1 restarts from a tiny first step each time).
    chunk = min(10, opt.steps)
    lbfgs = torch.optim.LBFGS([x], lr=1.0, max_iter=chunk, history_size=50,
                              line_search_fn="strong_wolfe")
    done = 0
    parts: dict[str, float] = {}

    def closure() -> Tensor:
        lbfgs.zero_grad(set_to_none=True)
        loss, p = loss_fn(x)
        parts.update(p)
        history.append(float(loss.detach()))
        loss.backward()
        return loss

    while done < opt.steps:
        lbfgs.step(closure)
        done += chunk
        if progress:
            progress(min(done, opt.steps), opt.steps, parts)
    return x.detach().clamp_(0.0, 1.0), history  # L-BFGS runs unconstrained (no projection)


def stylize(content: ImageLike, styles: Sequence[ImageLike],
            weights: Sequence[float] | None = None, options: GatysOptions | None = None,
            mask: ImageLike | None = None, net: nn.Module | None = None,
            progress: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Gatys style transfer; uint8 [H, W, 3] (long side ``options.size``) and a record.

    ``net`` overrides the backbone named in ``options`` (any :class:`FeatureNet`).
    """
    from muselab.device import resolve_device

    opt = options or GatysOptions()
    device = resolve_device(opt.device)
    c_full = to_float(fit_long_side(read_image(content, "content"), 4096))
    s_imgs = [to_float(read_image(s, f"style {i + 1}")) for i, s in enumerate(styles)]
    if not s_imgs:
        raise ConfigError("no style image given")
    if opt.color == "histogram":
        s_imgs = [match_colours(s, c_full) for s in s_imgs]
    w = style_weights(weights, len(s_imgs))
    feat = net if net is not None else load_feature_net(opt.backbone, opt.backbone_weights,
                                                        opt.device)
    feat.to(device)
    style_layers, content_layers = layers_for(feat)  # type: ignore[arg-type]
    style_layers = opt.style_layers or style_layers
    content_layers = opt.content_layers or content_layers
    g = torch.Generator().manual_seed(opt.seed)
    x: Tensor | None = None
    curves: list[list[float]] = []
    with _bar(progress, opt) as report:
        for level in range(opt.scales):
            side = round(opt.size / 2 ** (opt.scales - 1 - level))
            c = _scaled(c_full, side)
            ct = _tensor(c, device)
            ss = [_tensor(_scaled(s, round(side * opt.style_scale)), device) for s in s_imgs]
            loss_fn = StyleLoss(feat, ct, ss, list(map(float, w)), style_layers,  # type: ignore[arg-type]
                                content_layers,
                                (opt.content_weight, opt.style_weight, opt.tv_weight))
            if x is None:
                x0 = ct if opt.init == "content" else torch.rand(ct.shape, generator=g).to(device)
            else:
                x0 = F.interpolate(x, size=ct.shape[2:], mode="bilinear", align_corners=False)
            x, hist = optimise(loss_fn, x0, opt, report(level))
            curves.append(hist)
    assert x is not None
    out = x[0].permute(1, 2, 0).cpu().numpy()  # [H, W, 3]
    c = resize(c_full, (out.shape[1], out.shape[0]))
    image = finish(c, out, alpha=opt.alpha, color=opt.color, mask=mask)
    record = {"method": "gatys", "backbone": getattr(feat, "name", type(feat).__name__),
              "style_layers": list(style_layers), "content_layers": list(content_layers),
              "loss_curves": curves, "weights": [float(v) for v in w]}
    return image, record


class _bar:
    """A rich progress bar over all scales (or nothing)."""

    def __init__(self, enabled: bool, opt: GatysOptions) -> None:
        self.enabled, self.opt = enabled, opt

    def __enter__(self) -> Callable[[int], Progress | None]:
        if not self.enabled:
            return lambda level: None
        from muselab.data.imagefolder import make_progress

        self.progress = make_progress(True)
        self.progress.__enter__()
        task = self.progress.add_task("gatys", total=self.opt.steps * self.opt.scales)

        def report(level: int) -> Progress:
            def cb(i: int, n: int, parts: dict[str, float]) -> None:
                desc = f"gatys scale {level + 1}/{self.opt.scales} " + " ".join(
                    f"{k}={v:.3g}" for k, v in parts.items())
                self.progress.update(task, completed=level * n + i, description=desc)
            return cb

        return report

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.__exit__(None, None, None)
