"""Token generation with an exported Transformer and its KV cache, in numpy.

Each call feeds only the tokens the cache has not seen: the prompt once, then one token
per step, so the cost per token stays constant (as ``Transformer.generate`` with its
cache). Sampling: temperature (0 = greedy) and top-k (Fan et al. 2018).
"""

from __future__ import annotations

import numpy as np

from muselab.errors import ConfigError
from muselab.runtime.model import OnnxModel


def generate_tokens(model: OnnxModel, prompt: list[int], n_new: int, *, seed: int = 0,
                    temperature: float = 1.0, top_k: int | None = None) -> list[int]:
    """Continue ``prompt`` (token ids) by ``n_new`` tokens; returns prompt + new tokens."""
    meta = model.meta
    if model.kind != "transformer":
        raise ConfigError(f"{model.path} is a {model.kind} model, not a Transformer")
    vocab, block = int(meta["vocab_size"]), int(meta["block_size"])
    if not prompt or any(not 0 <= t < vocab for t in prompt):
        raise ConfigError(f"prompt must be 1+ token ids in 0..{vocab - 1}")
    if len(prompt) + n_new > block:
        raise ConfigError(f"{len(prompt)} + {n_new} tokens exceed the model's context of "
                          f"{block} (block_size)")
    if temperature < 0 or (top_k is not None and top_k < 1):
        raise ConfigError("temperature must be >= 0 and top_k >= 1")
    rng = np.random.default_rng(seed)
    shape = (int(meta["n_layer"]), 1, int(meta["n_head"]), 0, int(meta["head_dim"]))
    k = v = np.zeros(shape, dtype=np.float32)  # [L, 1, H, 0, D]: an empty cache
    tokens, new = list(prompt), list(prompt)
    for _ in range(n_new):
        logits, k, v = model.run("model", tokens=np.asarray([new], dtype=np.int64),
                                 past_k=k, past_v=v)
        nxt = _draw(logits[0, -1].astype(np.float64), rng, temperature, top_k)
        tokens.append(nxt)
        new = [nxt]
    return tokens


def _draw(logits: np.ndarray, rng: np.random.Generator, temperature: float,
          top_k: int | None) -> int:
    """One token id from ``logits`` [V]."""
    if temperature == 0.0:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k is not None and top_k < len(z):
        z = np.where(z < np.sort(z)[-top_k], -np.inf, z)
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))
