"""``muselab generate`` (text to image) and ``muselab edit`` (SDEdit, inpainting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from muselab.commands import eval_app, out, user_errors
from muselab.errors import ConfigError

#: The zoo model used when --model is not given.
DEFAULT_TEXT_MODEL = "emoji-text32"

Model = Annotated[str, typer.Option(help="Zoo name, run (directory or number) or model file.")]
N = Annotated[int, typer.Option(help="How many images.", min=1, max=1024)]
Seed = Annotated[int, typer.Option(help="Seed of the first image; image i uses seed+i.")]
Steps = Annotated[int, typer.Option(help="Sampling steps.", min=1, max=1000)]
Guidance = Annotated[float, typer.Option(help="Classifier-free guidance scale (1 = off).")]
Negative = Annotated[str | None, typer.Option(help="Negative prompt: steer away from it.")]
Sampler = Annotated[str, typer.Option(help="ddim (deterministic at eta 0) or ddpm.")]
Eta = Annotated[float, typer.Option(help="DDIM noise: 0 deterministic, 1 ~ DDPM.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]


def register(app: typer.Typer) -> None:
    app.command("generate")(user_errors(generate))
    app.command("edit")(user_errors(edit))
    eval_app.command("text")(user_errors(eval_text))


def eval_text(
    model: Annotated[str, typer.Argument(help="Text-to-image model: zoo name or run.")] =
    DEFAULT_TEXT_MODEL,
    n: Annotated[int, typer.Option(help="Held-out captions to draw.", min=1)] = 100,
    steps: Steps = 25,
    guidance: Guidance = 3.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
    grid: Annotated[Path | None, typer.Option(
        help="Also write a PNG of the first 16 held-out captions and their images.")] = None,
    device: Device = "auto",
) -> None:
    """In-house text alignment: share of held-out captions drawn in their emoji category."""
    from muselab.evaluate.text_alignment import evaluate_alignment
    from muselab.io import write_json
    from muselab.models.zoo import load_pipeline

    report = evaluate_alignment(load_pipeline(model, device=device), n=n, steps=steps,
                                guidance=guidance)
    out.print(f"text alignment (in-house), n={report.n}: prompted {report.accuracy:.1%}, "
              f"no prompt {report.unconditional:.1%}, real images {report.real:.1%}; "
              f"SWD x1e3 {report.swd:.1f}")
    if report.decoded:
        d = report.decoded
        out.print(f"  decoder-domain classifier (fitted to emoji as this model's autoencoder "
                  f"redraws them): prompted {d['accuracy']:.1%}, no prompt "
                  f"{d['unconditional']:.1%}, real images redrawn {d['real']:.1%}")
    for name, (hits, count) in report.per_category.items():
        out.print(f"  {name:<20} {hits:>3}/{count:<3}", markup=False)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if grid is not None and report.images is not None:
        from muselab.image.io import save_png
        from muselab.image.sheet import captioned_grid

        names = [c.split(",")[0] for c in report.captions[:16]]
        save_png(grid, captioned_grid(report.images[:16], names),
                 {"model": model, "prompts": names, "steps": steps, "guidance": guidance,
                  "seeds": "each caption's image index"})
        out.print(f"wrote {grid}")


def generate(
    prompt: Annotated[str, typer.Argument(help='What to draw, e.g. "a smiling cat".')],
    model: Model = DEFAULT_TEXT_MODEL,
    n: N = 8,
    seed: Seed = 0,
    steps: Steps = 25,
    guidance: Guidance = 3.0,
    negative: Negative = None,
    sampler: Sampler = "ddim",
    eta: Eta = 0.0,
    out_dir: OutDir = Path("generated"),
    device: Device = "auto",
) -> None:
    """Text to image: one PNG per seed (prompt, seed and settings inside) and a grid."""
    _run(prompt, model, n, seed, steps, guidance, negative, sampler, eta, out_dir, device)


def edit(
    image: Annotated[Path, typer.Argument(help="Picture or sketch to start from.")],
    prompt: Annotated[str | None, typer.Option(help="What it should become.")] = None,
    strength: Annotated[float, typer.Option(help="0 keeps the input, 1 ignores it (SDEdit).",
                                            min=0.0, max=1.0)] = 0.6,
    mask: Annotated[Path | None, typer.Option(help="Inpaint where this mask is white.")] = None,
    resample: Annotated[int, typer.Option(help="RePaint resampling per step.", min=1)] = 1,
    model: Model = DEFAULT_TEXT_MODEL,
    n: N = 4,
    seed: Seed = 0,
    steps: Steps = 25,
    guidance: Guidance = 3.0,
    negative: Negative = None,
    sampler: Sampler = "ddim",
    eta: Eta = 0.0,
    out_dir: OutDir = Path("edited"),
    device: Device = "auto",
) -> None:
    """Image to image: sketch-to-image and variations (SDEdit), or inpainting with a mask."""
    _run(prompt, model, n, seed, steps, guidance, negative, sampler, eta, out_dir, device,
         image=image, strength=strength, mask=mask, resample=resample)


def _run(prompt: str | None, model: str, n: int, seed: int, steps: int, guidance: float,
         negative: str | None, sampler: str, eta: float, out_dir: Path, device: str,
         image: Path | None = None, strength: float = 1.0, mask: Path | None = None,
         resample: int = 1) -> None:
    from muselab.image.diffusion_pipeline import DiffusionPipeline
    from muselab.image.edit import load_input, load_mask
    from muselab.image.io import make_grid, save_png
    from muselab.image.samplers import SamplerConfig
    from muselab.io import ensure_dir
    from muselab.models.zoo import load_pipeline

    if prompt is not None and not prompt.strip():
        raise ConfigError("the prompt is empty: describe what to draw, e.g. \"a red heart\"")
    if sampler not in ("ddim", "ddpm"):
        raise ConfigError(f"--sampler {sampler!r}: choose ddim or ddpm")
    pipe = load_pipeline(model, device=device)
    if not isinstance(pipe, DiffusionPipeline):
        raise ConfigError(f"--model {model}: a {pipe.config.get('model')} model cannot follow "
                          "prompts; use a diffusion model (muselab models list)")
    res = pipe.diffusion.image_shape[0]
    init = load_input(image, res) if image is not None else None
    m = load_mask(mask, image, res) if mask is not None and image is not None else None
    cfg = SamplerConfig(method=sampler, steps=steps, eta=eta)  # type: ignore[arg-type]
    seeds = list(range(seed, seed + n))
    images = pipe.text2img(prompt, seeds, negative=negative, sampler=cfg, guidance=guidance,
                           init=init, strength=strength if image is not None else 1.0, mask=m,
                           resample=resample)
    settings: dict[str, Any] = {"prompt": prompt, "negative": negative, "steps": steps,
                                "guidance": guidance, "sampler": sampler, "eta": eta}
    if image is not None:
        settings.update(input=str(image), strength=strength, mask=str(mask) if mask else None)
    ensure_dir(out_dir)
    for s, img in zip(seeds, images, strict=True):
        save_png(out_dir / f"seed{s:06d}.png", img, pipe.provenance(seed=s, **settings))
    save_png(out_dir / "grid.png", make_grid(images),
             pipe.provenance(seeds=f"{seed}..{seed + n - 1}", **settings))
    out.print(f"wrote {n} images and grid.png to {out_dir}")
