"""Command groups of the ``muselab`` CLI, one module per area, wired in by :mod:`muselab.cli`.

Each module exposes ``register(app)``, which adds its commands to the root Typer app.
Commands stay thin: they parse arguments, call the library and print. Every command
turns a :class:`~muselab.errors.MuselabError` into one ``error: ...`` line and exit 2
(:func:`user_errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from muselab.errors import MuselabError

F = TypeVar("F", bound=Callable[..., Any])

out = Console()
err = Console(stderr=True)


def user_errors(fn: F) -> F:
    """Report :class:`MuselabError` as one clear line and exit 2; nothing else is caught."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MuselabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


class DefaultGroup(TyperGroup):
    """A group whose first argument, when it names no sub-command, goes to ``metrics``.

    So ``muselab eval RUN --metrics fid`` and ``muselab eval copies RUN`` both work.
    """

    default_command = "metrics"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


#: ``muselab eval ...``: distribution metrics (default), copies, report, music, ...
eval_app = typer.Typer(cls=DefaultGroup, no_args_is_help=True,
                       help="Evaluate runs, folders, music and more.")


def _modules() -> tuple[Any, ...]:
    from muselab.commands import (
        backbones,
        crossmodal,
        evaluate,
        export,
        generate,
        inspire,
        music,
        poetry,
        provenance,
        rating,
        studio,
        style,
        tune,
    )

    return (backbones, crossmodal, evaluate, export, generate, inspire, music, poetry,
            provenance, rating, studio, style, tune)
