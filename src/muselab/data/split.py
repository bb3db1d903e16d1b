"""A fixed, seeded held-out split, shared by training (which leaves it out) and evaluation."""

from __future__ import annotations

import numpy as np


def holdout_split(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, held-out indices)`` of ``n`` items, ``k`` held out, both sorted.

    The held-out set depends only on ``(n, k, seed)``, never on the training seed, so
    every run on one data set leaves out the same items.
    """
    if not 0 <= k < n:
        raise ValueError(f"holdout {k} must be in [0, {n})")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])
