"""ONNX export: every kind of model matches torch in onnxruntime (max abs diff < 1e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from muselab.errors import ConfigError
from muselab.export.api import export_model
from muselab.export.onnx import ExportError, Graph, export_graph
from muselab.export.targets import plan_export
from muselab.models.style_nets import ResnetConfig
from muselab.models.transformer import TransformerConfig
from muselab.train.lm import LMConfig, LMTask
from muselab.train.run import load_task, start_run
from muselab.train.task import DataInfo, Task
from tests.tiny import tiny_config

TOL = 1e-4


def _train(model: str, runs: Path, extra: dict | None = None) -> Path:
    trainer = start_run(tiny_config(model, steps=2, extra=extra, sample_every=0,
                                    metric_every=0, checkpoint_every=2), runs)
    trainer.fit()
    return trainer.run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny runs (2 steps on digits) of a class-conditional GAN, a VAE, class diffusion and
    class diffusion on the VAE's latent vectors (an MLP denoiser)."""
    root = tmp_path_factory.mktemp("runs")
    cond = {"data": {"conditional": True}}
    out = {"gan": _train("dcgan", root, cond), "vae": _train("vae", root),
           "diffusion": _train("diffusion", root, cond)}
    vector = {"model_config": {"autoencoder": str(out["vae"]), "text": False}, **cond}
    out["vector"] = _train("latent-diffusion", root, vector)
    return out


def _perturb(task: Task, seed: int = 0) -> Task:
    """Randomise every weight (the U-Nets' zero-initialised output convs would make any
    graph look equal to torch)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in task.modules.values():
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return task


def _export_all(task: Task, config: dict, folder: Path) -> dict[str, dict]:
    """Export every graph of ``task``; each must match torch and give non-trivial outputs."""
    plan = plan_export(task, config)
    entries = {}
    for graph in plan.graphs:
        entries[graph.name] = export_graph(graph, folder / f"{graph.name}.onnx")
        assert entries[graph.name]["parity_max_abs_diff"] < TOL
        with torch.no_grad():
            out = graph.module.eval()(*graph.inputs.values())
        first = out[0] if isinstance(out, tuple) else out
        assert float(first.std()) > 1e-3, f"{graph.name} gives constant outputs"
    return entries


@pytest.mark.parametrize("kind", ["gan", "vae", "diffusion", "vector"])
def test_trained_runs_match_torch(runs: dict[str, Path], kind: str, tmp_path: Path) -> None:
    task, config = load_task(runs[kind], device="cpu")
    entries = _export_all(_perturb(task), config, tmp_path)
    assert set(entries) == ({"model", "decoder"} if kind == "vector" else {"model"})
    names = [i["name"] for i in entries["model"]["inputs"]]
    assert names == {"gan": ["z", "labels"], "vae": ["z"], "diffusion": ["x", "t", "labels"],
                     "vector": ["x", "t", "labels"]}[kind]
    if kind == "vector":
        assert entries["model"]["inputs"][0]["shape"] == ["batch", 16]  # the VAE's latents


def test_text_and_latent_diffusion_match_torch(text_run: Path, ae_run: Path, emoji_home: Path,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))
    task, config = load_task(text_run, device="cpu")
    entries = _export_all(_perturb(task), config, tmp_path / "text")
    assert [i["name"] for i in entries["model"]["inputs"]] == ["x", "t", "cond"]
    latent = _train("latent-diffusion", tmp_path / "runs", {
        "model_config": {"autoencoder": str(ae_run)},
        "data": {"source": "emoji", "resolution": 16, "limit": 64, "text": True}})
    task, config = load_task(latent, device="cpu")
    entries = _export_all(_perturb(task), config, tmp_path / "latent")
    assert set(entries) == {"model", "decoder"}
    assert entries["decoder"]["inputs"][0]["shape"] == ["batch", 4, 8, 8]


def test_style_and_translation_networks_match_torch(tmp_path: Path) -> None:
    from muselab.style.fast import FastStyleConfig, build_fast_style
    from muselab.style.paired import Pix2PixConfig, build_pix2pix
    from muselab.style.unpaired import CycleGANConfig, build_cyclegan

    torch.manual_seed(0)
    info = DataInfo(resolution=32)
    fast = build_fast_style(FastStyleConfig(net=ResnetConfig(width=8, n_res=1)), info)
    entries = _export_all(_perturb(fast), {"model": "fast-style"}, tmp_path / "fast")
    assert entries["model"]["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    p2p = build_pix2pix(Pix2PixConfig(a_source=str(tmp_path), b_source=str(tmp_path), width=8),
                        info)
    _export_all(_perturb(p2p), {"model": "pix2pix"}, tmp_path / "p2p")
    cyc = build_cyclegan(CycleGANConfig(net=ResnetConfig(width=8, n_res=1, output="tanh")), info)
    assert set(_export_all(_perturb(cyc), {"model": "cyclegan"}, tmp_path / "cyc")) == {
        "model", "reverse"}


def tiny_lm(rope: bool = True, seed: int = 0) -> LMTask:
    torch.manual_seed(seed)
    net = TransformerConfig(vocab_size=40, block_size=24, n_layer=2, n_head=2, n_embd=16,
                            dropout=0.0, rope=rope)
    return LMTask(LMConfig(net=net))


@pytest.mark.parametrize("rope", [True, False])
def test_transformer_kv_cache_graph_matches_full_forward(rope: bool, tmp_path: Path) -> None:
    """Prompt, then one token, then three: the cached ONNX logits equal torch's full pass."""
    import onnxruntime as ort

    from muselab.export.targets import empty_cache

    task = _perturb(tiny_lm(rope))
    _export_all(task, {"model": "music-bach"}, tmp_path)
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    cfg = task.model.cfg
    tokens = torch.randint(0, cfg.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = task.model.eval()(tokens)[0].numpy()  # [2, 9, V]
    k = v = empty_cache(cfg, 2).numpy()
    got = []
    for a, b in [(0, 5), (5, 6), (6, 9)]:
        logits, k, v = session.run(None, {"tokens": tokens[:, a:b].numpy(), "past_k": k,
                                          "past_v": v})
        got.append(logits)
    assert k.shape == (cfg.n_layer, 2, cfg.n_head, 9, cfg.head_dim)
    assert np.abs(np.concatenate(got, axis=1) - want).max() < TOL


def test_export_model_writes_graph_and_sidecar(runs: dict[str, Path], tmp_path: Path) -> None:
    sidecar = export_model(str(runs["diffusion"]), tmp_path / "out")
    meta = json.loads(sidecar.read_text())
    assert meta["kind"] == "diffusion" and meta["conditioning"] == "class"
    assert meta["latent_shape"] == [3, 32, 32] and meta["null_label"] == 10
    assert len(meta["schedule"]["alpha_bar"]) == meta["schedule"]["timesteps"] == 1000
    assert meta["graphs"]["model"]["sha256"] and "digits" in meta["licence"]
    assert meta["config"]["model"] == "diffusion" and meta["muselab_version"]
    assert (tmp_path / "out" / "model.onnx").stat().st_size > 10_000


def test_untraceable_and_unsupported_models_are_clear_errors(ae_run: Path,
                                                             tmp_path: Path) -> None:
    class Spectral(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft2(x).real  # no ONNX symbolic in the TorchScript exporter

    graph = Graph("model", Spectral(), {"x": torch.randn(2, 4, 4)}, ["y"])
    with pytest.raises(ExportError, match=r"Spectral.*could not be traced.*fft"):
        export_graph(graph, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    task, config = load_task(ae_run, device="cpu")
    with pytest.raises(ConfigError, match="autoencoder.*has no ONNX export"):
        plan_export(task, config)


def test_cli_export_and_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    from muselab.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["export", str(runs["gan"]), "--out", str(tmp_path / "g")])
    assert res.exit_code == 0, res.output
    assert "max |onnx - torch|" in res.output and (tmp_path / "g" / "model.json").is_file()
    res = runner.invoke(app, ["export", str(runs["gan"]), "--format", "tflite"])
    assert res.exit_code == 2 and "only onnx" in res.output
    res = runner.invoke(app, ["export", "no-such-model", "--runs", str(tmp_path)])
    assert res.exit_code == 2 and "no model 'no-such-model' to export" in res.output


def test_zoo_model_exports_with_its_licence(tmp_path: Path) -> None:
    """The shipped emoji-vae32 by name: sha256-checked, its licence carried over."""
    meta = json.loads(export_model("emoji-vae32", tmp_path).read_text())
    assert meta["kind"] == "vae" and meta["name"] == "emoji-vae32"
    assert meta["licence"].startswith("Apache-2.0") and meta["latent_shape"] == [128]
    assert meta["graphs"]["model"]["parity_max_abs_diff"] < TOL
