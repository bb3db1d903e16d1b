"""Nested state (optimiser state dicts, RNG states, callback state) <-> safetensors.

safetensors stores flat ``name -> tensor`` maps plus string metadata. :func:`flatten`
replaces every tensor in a nested structure by a reference and collects the
tensors; the remaining tree is JSON. :func:`unflatten` puts them back. No pickle.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import Tensor

_REF = "__tensor__"


def flatten(tree: Any, prefix: str, out: dict[str, Tensor]) -> Any:
    """Move the tensors of ``tree`` into ``out`` (keys under ``prefix``); return the JSON rest."""
    if isinstance(tree, Tensor):
        key = prefix
        out[key] = tree.detach().cpu().contiguous()
        return {_REF: key}
    if isinstance(tree, dict):
        return {
            "__dict__": [[_key(k), flatten(v, f"{prefix}.{k}", out)] for k, v in tree.items()]
        }
    if isinstance(tree, list | tuple):
        items = [flatten(v, f"{prefix}.{i}", out) for i, v in enumerate(tree)]
        return {"__tuple__": items} if isinstance(tree, tuple) else items
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree
    raise TypeError(f"cannot store {type(tree).__name__} at {prefix} in safetensors")


def unflatten(tree: Any, tensors: dict[str, Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(tree, dict):
        if _REF in tree:
            return tensors[tree[_REF]]
        if "__dict__" in tree:
            return {_unkey(k): unflatten(v, tensors) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def dumps(tree: Any) -> str:
    return json.dumps(tree, separators=(",", ":"))


def _key(k: Any) -> Any:
    # Optimiser state dicts are keyed by int parameter index; keep the type.
    if isinstance(k, int):
        return {"int": k}
    if isinstance(k, str):
        return k
    raise TypeError(f"unsupported dict key {k!r}")


def _unkey(k: Any) -> Any:
    return k["int"] if isinstance(k, dict) else k


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a training step may touch."""
    state: dict[str, Any] = {"trainer": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    generator.set_state(state["trainer"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
