"""Job kinds: each long task (train, batch sample, stylize, compose, ...) is one registered
function that the worker runs with a :class:`JobContext`.

A new capability plugs in as one module::

    class ComposeParams(BaseModel):
        bars: int = 8

    @register_job("compose", ComposeParams, description="Compose music")
    def compose(ctx: JobContext, params: ComposeParams) -> dict[str, Any]:
        for i in range(params.bars):
            if ctx.progress(i, params.bars, f"bar {i}"):
                return {"stopped_at": i}
        return {"items": ctx.add_to_gallery(...)}

and one line in :data:`_BUILTIN_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from muselab.errors import ConfigError

if TYPE_CHECKING:
    from muselab.studio.context import JobContext

JobFn = Callable[["JobContext", Any], dict[str, Any]]

#: Modules whose import registers the built-in job kinds.
_BUILTIN_MODULES = ("muselab.studio.kinds.train", "muselab.studio.kinds.sample",
                    "muselab.studio.kinds.value", "muselab.studio.kinds.creative",
                    "muselab.studio.kinds.crossmodal", "muselab.studio.kinds.tune")

_KINDS: dict[str, JobKind] = {}


@dataclass(frozen=True)
class JobKind:
    name: str
    params: type[BaseModel]
    run: JobFn
    description: str
    #: Called in the web process at submit time: extra checks and the job's unique key.
    prepare: Callable[[Any, Any], str | None] | None = None

    def parse(self, raw: dict[str, Any]) -> BaseModel:
        """Validate ``raw`` parameters; a :class:`ConfigError` naming the bad field."""
        try:
            return self.params.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            raise ConfigError(f"{self.name} job: {where}: {first['msg']}") from None


def register_job(name: str, params: type[BaseModel], *, description: str,
                 prepare: Callable[[Any, Any], str | None] | None = None
                 ) -> Callable[[JobFn], JobFn]:
    """Register ``fn`` as job kind ``name`` taking ``params`` (a decorator)."""

    def decorate(fn: JobFn) -> JobFn:
        if name in _KINDS and _KINDS[name].run is not fn:
            raise ValueError(f"job kind {name!r} is already registered")
        _KINDS[name] = JobKind(name, params, fn, description, prepare)
        return fn

    return decorate


def get_kind(name: str) -> JobKind:
    _load_builtins()
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown job kind {name!r} (available: {', '.join(sorted(_KINDS))})"
                          ) from None


def list_kinds() -> list[JobKind]:
    _load_builtins()
    return [_KINDS[k] for k in sorted(_KINDS)]


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
