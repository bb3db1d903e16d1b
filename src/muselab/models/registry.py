"""The model registry: names map to real objects, never to dotted class-name strings.

A registered *model* is a training recipe: a config dataclass, the defaults that make
the recipe (loss, regularisers, optimiser settings) and a ``build`` function that
returns a :class:`~muselab.train.task.Task` for the Trainer. One builder may be
registered under several names with different defaults, for example::

    @register_model("wgan-gp", config=GANConfig, defaults={"loss": "wgan-gp"})
    @register_model("dcgan", config=GANConfig, defaults={"loss": "ns"})
    def build_gan(cfg: GANConfig, data: DataInfo) -> GANTask: ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from muselab.errors import ConfigError

if TYPE_CHECKING:
    from muselab.train.task import DataInfo, Task

Builder = Callable[[Any, "DataInfo"], "Task"]

#: Modules whose import registers the built-in models (loaded on first lookup).
_BUILTIN_MODULES = ("muselab.image.gan", "muselab.image.vae", "muselab.image.diffusion",
                    "muselab.image.autoencoder",
                    "muselab.style.fast", "muselab.style.unpaired", "muselab.style.paired",
                    "muselab.music.recipes", "muselab.poetry.recipes")

_REGISTRY: dict[str, ModelSpec] = {}


@dataclass(frozen=True)
class ModelSpec:
    """One registered recipe."""

    name: str
    description: str
    config_cls: type
    build: Builder
    defaults: Mapping[str, Any] = field(default_factory=dict)
    train_defaults: Mapping[str, Any] = field(default_factory=dict)


def register_model(
    name: str,
    *,
    config: type,
    description: str,
    defaults: Mapping[str, Any] | None = None,
    train_defaults: Mapping[str, Any] | None = None,
) -> Callable[[Builder], Builder]:
    """Register ``build`` under ``name`` with recipe ``defaults`` (a decorator)."""

    def decorate(build: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(
            name, description, config, build, dict(defaults or {}), dict(train_defaults or {})
        )
        return build

    return decorate


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; a :class:`ConfigError` listing the choices if none."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r} (available: {', '.join(sorted(_REGISTRY))})"
        ) from None


def list_models() -> list[ModelSpec]:
    """All registered specs, sorted by name."""
    _load_builtins()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
