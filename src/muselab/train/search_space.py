"""Search spaces of ``muselab tune``: which settings of a recipe are searched, and how.

A space is registered per model-config class (:func:`search_space`); :func:`space_for`
widens it to hold the recipe's own values, so the defaults can be trial 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from muselab.config import to_dict
from muselab.errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from muselab.train.run import RunConfig


@dataclass(frozen=True)
class Param:
    """One searched setting at a dotted config path (``model_config.lr_g``)."""

    path: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.path, list(self.choices))
        return trial.suggest_float(self.path, self.low, self.high, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return isinstance(value, int | float) and self.low <= value <= self.high


SpaceFn = Callable[[], tuple[Param, ...]]
_SPACES: dict[type, SpaceFn] = {}


def search_space(config_cls: type) -> Callable[[SpaceFn], SpaceFn]:
    """Register the search space of recipes whose model config is ``config_cls``."""

    def decorate(fn: SpaceFn) -> SpaceFn:
        _SPACES[config_cls] = fn
        return fn

    return decorate


def _register_builtin_spaces() -> None:
    from muselab.image.gan import GANConfig
    from muselab.image.vae import VAERecipe

    @search_space(GANConfig)
    def gan_space() -> tuple[Param, ...]:
        return (
            # Adam step sizes and momentum (Kingma & Ba 2015; Radford 2016 use 2e-4, 0.5).
            Param("model_config.lr_g", 2e-5, 2e-3, log=True),
            Param("model_config.lr_d", 2e-5, 2e-3, log=True),
            Param("model_config.betas.0", 0.0, 0.9),
            Param("train.batch_size", choices=(32, 64, 128)),
            # Generator EMA (Karras 2018; Yazici 2019) and DiffAugment (Zhao 2020).
            Param("train.ema_decay", choices=(0.0, 0.99, 0.999)),
            Param("model_config.augment", choices=("", "color,translation")),
        )

    @search_space(VAERecipe)
    def vae_space() -> tuple[Param, ...]:
        return (
            Param("model_config.lr", 1e-4, 3e-3, log=True),
            Param("model_config.net.beta", 0.1, 2.0, log=True),  # beta-VAE (Higgins 2017)
            Param("train.batch_size", choices=(32, 64, 128)),
        )


def space_for(cfg: RunConfig) -> tuple[Param, ...]:
    """The search space of ``cfg``'s recipe, widened to hold ``cfg``'s own values (so the
    defaults are trial 0); a :class:`ConfigError` if the recipe has none."""
    _register_builtin_spaces()
    tree = config_tree(cfg)
    for cls, fn in _SPACES.items():
        if isinstance(cfg.model_config, cls):
            return tuple(_widen(p, get_path(tree, p.path)) for p in fn())
    from muselab.models.registry import list_models

    tunable = [s.name for s in list_models() if any(s.config_cls is c for c in _SPACES)]
    raise ConfigError(f"muselab tune: model {cfg.model!r} has no search space "
                      f"(tunable: {', '.join(tunable)})")


def _widen(p: Param, value: Any) -> Param:
    if p.contains(value):
        return p
    if p.choices:
        return dataclasses.replace(p, choices=(*p.choices, value))
    return dataclasses.replace(p, low=min(p.low, value), high=max(p.high, value))


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at ``path`` in a nested dict (list items by index)."""
    *parents, last = path.split(".")
    node: Any = tree
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def config_tree(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` as the nested dict the dotted paths of a space address."""
    return {"model": cfg.model, "model_config": to_dict(cfg.model_config),
            "data": to_dict(cfg.data), "train": to_dict(cfg.train)}
