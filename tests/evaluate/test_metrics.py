"""The metric registry on known cases: identical sets, shifted sets, small N, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from muselab.data import ImageDataset
from muselab.errors import ConfigError, DataError
from muselab.evaluate.features import PixelFeatures
from muselab.evaluate.metrics import (
    evaluate,
    get_metric,
    metric_names,
    parse_metrics,
)


def by_name(results: list) -> dict:
    return {r.name: r for r in results}


def test_registry_holds_every_metric() -> None:
    assert metric_names() == ["fid", "kid", "pr", "dc", "swd"]
    assert [m.name for m in parse_metrics("kid, FID,kid")] == ["kid", "fid"]
    with pytest.raises(ConfigError, match="unknown metric 'is'"):
        parse_metrics("fid,is")


def test_identical_sets_give_the_ideal_scores(emoji_data: ImageDataset) -> None:
    images = emoji_data.images[:64]
    ev = evaluate(images, images, "fid,kid,pr,dc,swd", PixelFeatures(), n_boot=4, seed=1,
                  cache_real=False)
    r = by_name(ev.results)
    assert abs(r["fid"].value) < 1e-6
    assert r["precision"].value == r["recall"].value == r["coverage"].value == 1.0
    assert r["swd"].value == 0.0
    assert abs(r["kid"].value) < 3 * r["kid"].extra["std"]
    assert r["fid"].ci_low == 0.0 and r["swd"].ci_low == 0.0  # clipped: both are >= 0
    for res in ev.results:
        assert res.n_real == res.n_fake == 64 and res.extractor in ("pixels", "images")
        assert res.ci_low is not None and res.ci_low <= res.ci_high


def test_shift_raises_distances_above_the_real_vs_real_floor(emoji_data: ImageDataset) -> None:
    a, b = emoji_data.images[:120], emoji_data.images[120:240]
    dark = (b.astype(np.int16) * 6 // 10).astype(np.uint8)
    kw = {"n_boot": 5, "seed": 0, "cache_real": False}
    floor = by_name(evaluate(a, b, "fid,kid,pr,dc", PixelFeatures(), **kw).results)
    shifted = by_name(evaluate(a, dark, "fid,kid,pr,dc", PixelFeatures(), **kw).results)
    assert shifted["fid"].value > 3 * floor["fid"].value
    assert shifted["kid"].ci_low > floor["kid"].ci_high  # separated beyond the CIs
    assert shifted["precision"].value < floor["precision"].value
    assert shifted["density"].value < floor["density"].value
    for r in floor.values():  # every interval brackets its estimate
        assert r.ci_low <= r.value <= r.ci_high, r


def test_feature_metrics_on_gaussians() -> None:
    """On synthetic features: KID of one distribution ~0, FID of a mean shift ~|shift|^2."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((800, 8)), rng.standard_normal((800, 8))
    kid = get_metric("kid").compute(x, y, n_boot=20, rng=np.random.default_rng(1))[0]
    assert abs(kid.value) < 2 * kid.extra["std"] and kid.ci_low < 0 < kid.ci_high
    far = get_metric("kid").compute(x, y + 0.5, n_boot=0, rng=np.random.default_rng(1))[0]
    assert far.value > 10 * kid.extra["std"]
    fid = get_metric("fid").compute(x, y + 1.0, n_boot=20, rng=np.random.default_rng(1))[0]
    assert fid.value == pytest.approx(8.0, rel=0.1)
    assert fid.ci_low < 8.0 + 1.0 and fid.ci_high > 8.0 - 1.0
    p, r = get_metric("pr").compute(x, y * 0.2, n_boot=0, rng=np.random.default_rng(1))
    assert p.value > 0.95 and r.value < 0.3 and p.ci_low is None  # collapsed fakes


def test_same_seed_same_results(emoji_data: ImageDataset) -> None:
    a, b = emoji_data.images[:40], emoji_data.images[40:80]
    one = evaluate(a, b, "kid,pr", PixelFeatures(), n_boot=3, seed=7, cache_real=False)
    two = evaluate(a, b, "pr,kid", PixelFeatures(), n_boot=3, seed=7, cache_real=False)
    key = lambda e: sorted((r.name, r.value, r.ci_low) for r in e.results)  # noqa: E731
    assert key(one) == key(two)


def test_too_few_images_names_the_minimum(emoji_data: ImageDataset) -> None:
    few = emoji_data.images[:5]
    with pytest.raises(DataError, match="dc needs at least 6 images in each set; got 5 real"):
        evaluate(few, emoji_data.images[:50], "fid,dc", PixelFeatures(), n_boot=0)
    ev = evaluate(few, emoji_data.images[:50], "fid,pr", PixelFeatures(), n_boot=0,
                  cache_real=False)
    assert ev.warnings and "too small for FID" in ev.warnings[0] and "KID" in ev.warnings[0]


def test_sets_of_different_sizes_are_refused(emoji_data: ImageDataset) -> None:
    small = emoji_data.images[:10, :16, :16]
    with pytest.raises(DataError, match="differ in size"):
        evaluate(emoji_data.images[:10], small, "kid", PixelFeatures())
