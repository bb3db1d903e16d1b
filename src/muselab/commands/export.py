"""``muselab export``: trained models to ONNX for the torch-free runtime (``muselab-run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from muselab.commands import out, user_errors
from muselab.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("export")(user_errors(export))


def export(
    model: Annotated[str, typer.Argument(help="Run (directory, number or name), model file or "
                                              "zoo name.")],
    fmt: Annotated[str, typer.Option("--format", help="Export format (onnx).")] = "onnx",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder "
                                                 "(default exports/NAME).")] = None,
    prompt: Annotated[list[str] | None, typer.Option(
        "--prompt", help="Text models: embed this prompt for muselab-run (repeatable).")] = None,
    runs: Annotated[Path | None, typer.Option(help="Runs directory (default ./runs).")] = None,
) -> None:
    """Export a generator, VAE decoder, diffusion U-Net (+ decoder), style network or
    Transformer (with KV cache) to ONNX, checked against torch with onnxruntime."""
    if fmt != "onnx":
        raise ConfigError(f"--format {fmt!r}: only onnx is supported")
    import json

    from muselab.export.api import export_model

    sidecar = export_model(model, out_dir, runs_dir=runs, prompts=prompt or None)
    meta = json.loads(sidecar.read_text("utf-8"))
    for name, graph in meta["graphs"].items():
        size = (sidecar.parent / graph["file"]).stat().st_size / 2**20
        out.print(f"{name}: {sidecar.parent / graph['file']} ({size:.2f} MiB, max |onnx - torch| "
                  f"{graph['parity_max_abs_diff']:.1e})", highlight=False)
    use = {"style": "stylize {} IMAGE --out OUT.png", "translate": "stylize {} IMAGE --out "
           "OUT.png", "transformer": "tokens {} --prompt-ids 0 --n 32"}.get(
        meta["kind"], "sample {} --seeds 0-7 --out samples")
    out.print(f"{meta['kind']} model exported; run it without torch: muselab-run "
              + use.format(sidecar.parent / "model.onnx"), highlight=False)
