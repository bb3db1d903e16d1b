"""``muselab`` commands: backbones (``muselab backbones list|fetch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from muselab.commands import out, user_errors

backbones_app = typer.Typer(help="Feature backbones for metrics, perceptual and style losses.",
                            no_args_is_help=True)


@backbones_app.command("list")
@user_errors
def backbones_list() -> None:
    """List the backbones: in-house or literature, what they need, whether they are ready."""
    from rich.table import Table

    from muselab.models.backbones import list_backbones
    from muselab.models.backbones.fetch import converted_path, is_converted

    table = Table("name", "kind", "weights", "dim", "input", "licence")
    missing = 0
    for info in list_backbones():
        if info.needs_weights:
            status = "your file (weights=PATH)"
        elif info.fetchable:
            status = "fetched" if is_converted(info.name) else "not fetched"
            missing += status == "not fetched"
        else:
            status = "from a seed"
        kind = "in-house" if info.in_house else "literature"
        table.add_row(info.name, kind, status, str(info.feature_dim),
                      str(info.input_size), info.licence.split(";")[0])
    out.print(table)
    out.print(f"converted weights live in {converted_path('NAME').parent}")
    if missing:
        out.print("fetch and convert them with: muselab backbones fetch")


@backbones_app.command("fetch")
@user_errors
def backbones_fetch(
    names: Annotated[list[str] | None, typer.Argument(
        help="Backbones to fetch (default: every fetchable one).")] = None,
    tarball: Annotated[Path | None, typer.Option(
        help="Use this nsfwjs-4.3.0.tgz (from `npm pack nsfwjs@4.3.0`) instead of "
             "downloading.")] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if already done.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress.")] = True,
) -> None:
    """Download (sha256-checked) and convert the nsfwjs backbones into the data home."""
    from muselab.errors import ConfigError
    from muselab.models.backbones import get_info
    from muselab.models.backbones.fetch import MODELS, fetch_backbone

    chosen = names or list(MODELS)
    for name in chosen:
        info = get_info(name)
        if not info.fetchable:
            what = ("pass your weights file (weights=PATH)" if info.needs_weights
                    else "its weights come from a seed")
            raise ConfigError(f"backbone {name!r} has nothing to fetch: {what}")
    for name in chosen:
        path = fetch_backbone(name, tarball=tarball, progress=progress, force=force)
        out.print(f"{name}: {path}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(backbones_app, name="backbones")
