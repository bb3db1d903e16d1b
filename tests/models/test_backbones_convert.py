"""The converted nsfwjs backbones reproduce the original tfjs graphs.

The reference activations in tests/fixtures/backbones/<backbone>.json were recorded once
from the ORIGINAL nsfwjs@4.3.0 graphs with pure-JS @tensorflow/tfjs 4.22.0 in Node
(scripts/record_tfjs_reference.mjs) on muselab.models.backbones.reference_pattern. The
tarball is fetched (npm registry, sha256-pinned) and converted once into a data home
shared across runs ($MUSELAB_TEST_HOME, else the user's data home, as for the emoji set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from typer.testing import CliRunner

from muselab.cli import app
from muselab.models.backbones import load_backbone, reference_pattern
from muselab.models.backbones.fetch import (
    NSFWJS,
    converted_path,
    fetch_backbone,
    is_converted,
    tarball_path,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "backbones"
NAMES = ("mobilenet-v2", "inception-v3")
#: Max |converted - tfjs| over the recorded values (issue 6: within 1e-4 max abs).
ATOL = 1e-4


@pytest.fixture(scope="session")
def nsfwjs_home() -> Path:
    """A data home, shared across runs, with both backbones fetched and converted."""
    default = os.environ.get("MUSELAB_HOME") or str(Path.home() / ".cache" / "muselab")
    home = Path(os.environ.get("MUSELAB_TEST_HOME") or default).expanduser()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(home))
        for name in NAMES:
            fetch_backbone(name, progress=False)
    return home


@pytest.fixture
def home(nsfwjs_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSELAB_HOME", str(nsfwjs_home))
    return nsfwjs_home


def _reference(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_converted_net_reproduces_the_tfjs_graph(name: str, home: Path) -> None:
    ref = _reference(name)
    net = load_backbone(name, device="cpu")
    assert net.input_size == ref["input"]["size"]
    image = torch.from_numpy(reference_pattern(net.input_size))  # [S, S, 3] uint8
    x = image.permute(2, 0, 1)[None].float() / 255  # [1, 3, S, S]
    with torch.no_grad():
        feats = net(x, list(ref["layers"]))
        pooled = net.pooled(x)[0].numpy()
    assert list(ref["layers"]) == list(net.layers)  # every exposed layer is checked
    for layer, want in ref["layers"].items():
        got = feats[layer].permute(0, 2, 3, 1).numpy()  # NHWC, as tfjs
        assert list(got.shape) == want["shape_nhwc"], layer
        flat = got.reshape(-1)
        err = np.abs(flat[want["index"]] - np.asarray(want["values"])).max()
        assert err <= ATOL, f"{name} {layer}: max abs error {err:.2e}"
        scale = max(want["std"], 1e-3)
        assert abs(flat.mean() - want["mean"]) <= 1e-5 * scale + 1e-6, layer
        assert abs(flat.std() - want["std"]) <= 1e-5 * scale + 1e-6, layer
        assert abs(np.abs(flat).max() - want["absmax"]) <= ATOL, layer
    assert pooled.shape == (net.feature_dim,)
    assert np.abs(pooled - np.asarray(ref["pooled"])).max() <= ATOL


@pytest.mark.parametrize("name", NAMES)
def test_converted_file_records_provenance(name: str, home: Path) -> None:
    path = converted_path(name)
    assert is_converted(name)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["source"] == f"npm:{NSFWJS.spec}" and meta["tarball_sha256"] == NSFWJS.sha256
    net = load_backbone(name, device="cpu")
    assert net.in_house and net.provenance["source"] == f"npm:{NSFWJS.spec}"


def test_fetch_is_idempotent_and_conversion_deterministic(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = converted_path("mobilenet-v2")
    stamp = cached.stat().st_mtime_ns
    res = CliRunner().invoke(app, ["backbones", "fetch", "mobilenet-v2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "mobilenet-v2-nsfwjs-4.3.0.safetensors" in res.output.replace("\n", "")
    assert cached.stat().st_mtime_ns == stamp  # nothing redone
    tgz = tarball_path()
    monkeypatch.setenv("MUSELAB_HOME", str(tmp_path / "fresh"))  # offline, from the tarball
    again = fetch_backbone("mobilenet-v2", tarball=tgz, progress=False)
    assert again != cached
    first, second = load_file(str(cached)), load_file(str(again))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_converted_file_can_be_passed_explicitly(home: Path) -> None:
    net = load_backbone("mobilenet-v2", weights=converted_path("mobilenet-v2"), device="cpu")
    x = torch.rand(2, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    feats = net(x, ["block_5", "conv_last"])
    assert feats["block_5"].shape == (2, 32, 12, 10)
    assert feats["conv_last"].shape == (2, 1280, 3, 3)
    assert net.pooled(x).shape == (2, 1280)


def test_pooled_features_feed_the_original_nsfw_head(home: Path) -> None:
    """End to end: the dropped 5-class head, applied to ``pooled``, gives tfjs's output."""
    from muselab.models.backbones.fetch import MODELS, read_tfjs_model

    weights = read_tfjs_model(tarball_path(), MODELS["mobilenet-v2"])
    net = load_backbone("mobilenet-v2", device="cpu")
    x = torch.from_numpy(reference_pattern(224)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        h = net.pooled(x).double().numpy()  # [1, 1280]
    for layer in ("dense_1", "dense_2", "dense_3"):
        h = h @ weights[f"{layer}/kernel"] + weights[f"{layer}/bias"]
        h = np.maximum(h, 0) if layer != "dense_3" else np.exp(h) / np.exp(h).sum()
    want = np.asarray(_reference("mobilenet-v2")["nsfw_probs"])
    assert np.abs(h[0] - want).max() < 1e-5
