"""The torch-free runtime: numpy DDIM equals the torch sampler, images, tokens, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from muselab.errors import ConfigError, DataError
from muselab.export.api import Loaded, export_loaded
from muselab.runtime import ddim
from muselab.runtime.cli import main
from muselab.runtime.model import OnnxModel
from muselab.runtime.sample import diffuse, generate, parse_seeds, stylize
from muselab.train.run import load_task, start_run
from muselab.train.task import Task
from tests.tiny import tiny_config

SRC = Path(__file__).resolve().parents[2] / "src"


#: The torch task behind each export of the ``exports`` fixture, for comparisons.
TASKS: dict[Path, Task] = {}


def _perturbed_export(run: Path, out: Path, prompts: list[str] | None = None) -> OnnxModel:
    """Export ``run`` with every weight randomised a little (so the U-Net is not ~zero)."""
    task, config = load_task(run, device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in task.modules.values():
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    export_loaded(Loaded(task, config, run.name, str(run), "test"), out, prompts=prompts)
    model = OnnxModel.load(out / "model.onnx")
    TASKS[model.path] = task
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, text_run: Path, ae_run: Path,
            emoji_home: Path) -> dict[str, OnnxModel]:
    """GAN, class diffusion, text diffusion (with a prompt), latent diffusion and class
    diffusion on VAE latent vectors: exports."""
    root = tmp_path_factory.mktemp("exports")
    out: dict[str, OnnxModel] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(emoji_home))
        vae = start_run(tiny_config("vae", steps=1, sample_every=0, metric_every=0,
                                    checkpoint_every=1), root / "runs")
        vae.fit()
        for name, model, extra in [
            ("vector", "latent-diffusion", {"data": {"conditional": True}, "model_config": {
                "autoencoder": str(vae.run_dir), "text": False}}),
            ("gan", "dcgan", {"data": {"conditional": True}}),
            ("class", "diffusion", {"data": {"conditional": True}}),
            ("latent", "latent-diffusion", {
                "model_config": {"autoencoder": str(ae_run)},
                "data": {"source": "emoji", "resolution": 16, "limit": 64, "text": True}}),
        ]:
            trainer = start_run(tiny_config(model, steps=2, extra=extra, sample_every=0,
                                            metric_every=0, checkpoint_every=2), root / "runs")
            trainer.fit()
            out[name] = _perturbed_export(trainer.run_dir, root / name)
        out["text"] = _perturbed_export(text_run, root / "text", prompts=["a smiling cat"])
    return out


def _torch_ddim(model: OnnxModel, noise: np.ndarray, cond: torch.Tensor | None,
                labels: torch.Tensor | None, steps: int, guidance: float) -> np.ndarray:
    from muselab.image.diffusion import DiffusionTask, guided
    from muselab.image.samplers import SamplerConfig, sample

    task = TASKS[model.path]
    assert isinstance(task, DiffusionTask)
    fn = guided(task.unet, cond, None, labels, guidance)
    with torch.no_grad():
        x = sample(fn, task.schedule, torch.from_numpy(noise),
                   SamplerConfig(steps=steps, clip=task.ae is None))
        return task.to_image(x).numpy() if task.ae is not None else x.numpy()


def _noise(seeds: list[int], shape: tuple[int, ...]) -> np.ndarray:
    return np.stack([np.random.default_rng(s).standard_normal(shape, dtype=np.float32)
                     for s in seeds])


def test_numpy_ddim_equals_torch_sampler_on_the_same_network(
        exports: dict[str, OnnxModel]) -> None:
    """The numpy sampler driving the torch U-Net reproduces muselab.image.samplers."""
    model = exports["class"]
    task = TASKS[model.path]
    meta = model.meta

    def net(x: np.ndarray, t: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            labels = None if c is None else torch.from_numpy(c)
            return task.unet(torch.from_numpy(x), torch.from_numpy(t), None, labels).numpy()

    noise, labels = _noise([3, 4], (3, 32, 32)), np.array([1, 7])
    sched = ddim.Schedule(meta["schedule"]["alpha_bar"], meta["schedule"]["prediction"])
    got = ddim.sample(ddim.guided(net, labels, np.full(2, 10), 3.0), sched, noise, 6)
    want = _torch_ddim(model, noise, None, torch.from_numpy(labels), 6, 3.0)
    assert np.abs(got - want).max() < 1e-5 and want.std() > 0.05


def _close(got: np.ndarray, want: np.ndarray) -> None:
    """ONNX vs torch through a whole sampler, compared as the uint8 images users get.

    The first DDIM step divides the network's (< 1e-4) difference by sqrt(alpha-bar at
    T-1) ~ 1e-4, so pixels that escape the x0 clipping may differ by about 1e-2: at most
    2 of 255 levels, and well under a tenth of a level on average.
    """
    from muselab.runtime.sample import to_uint8

    diff = np.abs(to_uint8(got).astype(int) - to_uint8(want).astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.1, (diff.max(), diff.mean())


def test_onnx_sampling_matches_torch(exports: dict[str, OnnxModel]) -> None:
    """Class, text (+ guidance) and latent (+ decoder.onnx) models, same noise as torch."""
    seeds = [3, 4]
    cls = exports["class"]
    got = diffuse(cls, seeds, np.array([1, 7]), None, steps=4, guidance=3.0)
    _close(got, _torch_ddim(cls, _noise(seeds, (3, 32, 32)), None, torch.tensor([1, 7]), 4, 3.0))
    emb = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    cond = torch.from_numpy(emb)[None].expand(2, -1)
    text = exports["text"]
    got = diffuse(text, seeds, None, emb, steps=3, guidance=2.0)
    _close(got, _torch_ddim(text, _noise(seeds, (3, 16, 16)), cond, None, 3, 2.0))
    latent = exports["latent"]
    got = diffuse(latent, seeds, None, emb, steps=3, guidance=2.0)
    assert got.shape == (2, 3, 16, 16)
    _close(got, _torch_ddim(latent, _noise(seeds, (4, 8, 8)), cond, None, 3, 2.0))
    vector = exports["vector"]  # an MLP on VAE latent vectors [B, 16], then the VAE decoder
    got = diffuse(vector, seeds, np.array([2, 5]), None, steps=3, guidance=3.0)
    assert got.shape == (2, 3, 32, 32)
    _close(got, _torch_ddim(vector, _noise(seeds, (16,)), None, torch.tensor([2, 5]), 3, 3.0))


def test_images_depend_only_on_their_seed(exports: dict[str, OnnxModel]) -> None:
    gan = exports["gan"]
    names = gan.meta["class_names"]
    a = generate(gan, [0, 1, 2], label=names[2], batch=3)
    b = generate(gan, [2, 1], label=names[2], batch=1)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[2], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])
    one = generate(gan, [5, 5], label=names[3])
    other = generate(gan, [5], label=names[4])
    assert np.array_equal(one[0], one[1]) and not np.array_equal(one[0], other[0])
    x = generate(exports["class"], [0, 1], steps=3, eta=0.5, batch=1)
    y = generate(exports["class"], [0, 1], steps=3, eta=0.5, batch=2)
    assert np.array_equal(x, y)  # DDIM noise comes from each image's own generator


def test_cli_samples_gan_and_text_unet_without_importing_torch(
        exports: dict[str, OnnxModel], tmp_path: Path) -> None:
    """muselab-run in a fresh interpreter: PNGs out, and torch never imported."""
    gan, text = exports["gan"].path, exports["text"].path
    code = f"""
import sys
from muselab.runtime.cli import main
assert main(["sample", {str(gan)!r}, "--seeds", "0-3", "--out", {str(tmp_path / "g")!r}]) == 0
assert main(["sample", {str(text)!r}, "--seeds", "0,9", "--steps", "3", "--prompt",
             "a smiling cat", "--out", {str(tmp_path / "t")!r}]) == 0
bad = [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "muselab.train",
                                                               "muselab.models"))]
assert not bad, bad
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "g").glob("seed*.png"))) == 4
    from muselab.image.io import read_png_metadata

    meta = read_png_metadata(tmp_path / "t" / "seed0009.png")
    assert meta["seed"] == 9 and meta["prompt"] == "a smiling cat" and meta["runtime"] == "onnx"


def test_stylize_matches_torch_at_any_size(tmp_path: Path) -> None:
    from muselab.models.style_nets import ResnetConfig
    from muselab.style.fast import FastStyleConfig, build_fast_style
    from muselab.train.task import DataInfo

    torch.manual_seed(0)
    task = build_fast_style(FastStyleConfig(net=ResnetConfig(width=8, n_res=1)), DataInfo(32))
    export_loaded(Loaded(task, {"model": "fast-style"}, "style", "test", "test"), tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    got = stylize(OnnxModel.load(tmp_path), image)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = (task.T.eval()(x)[0].permute(1, 2, 0).numpy() * 255).round()
    assert got.shape == (30, 26, 3)
    assert np.abs(got.astype(float) - want).max() <= 1
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "in.png")
    assert main(["stylize", str(tmp_path), str(tmp_path / "in.png"), "--out",
                 str(tmp_path / "out.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), got)
    assert main(["stylize", str(tmp_path), str(tmp_path / "in.png"), "--reverse", "--out",
                 str(tmp_path / "x.png")]) == 2  # no reverse graph: CycleGAN only


def test_tokens_match_torch_greedy_generation(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.export.test_export import tiny_lm

    task = tiny_lm(rope=True)
    with torch.no_grad():
        for p in task.model.parameters():
            p.mul_(5.0)  # confident logits: greedy choices are far from ties
    export_loaded(Loaded(task, {"model": "music-bach"}, "lm", "test", "test"), tmp_path)
    from muselab.runtime.lm import generate_tokens

    prompt = [1, 7, 3]
    want = task.model.generate(torch.tensor([prompt]), 12, temperature=0.0)[0].tolist()
    got = generate_tokens(OnnxModel.load(tmp_path), prompt, 12, temperature=0.0)
    assert got == want
    sampled = generate_tokens(OnnxModel.load(tmp_path), prompt, 12, seed=1, top_k=5)
    assert len(sampled) == 15 and sampled[:3] == prompt
    with pytest.raises(ConfigError, match="exceed the model's context"):
        generate_tokens(OnnxModel.load(tmp_path), prompt, 30)
    assert main(["tokens", str(tmp_path), "--prompt-ids", "1,7,3", "--n", "12",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(map(str, want))


def test_bad_input_is_a_clear_error(exports: dict[str, OnnxModel], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    for bad in ("", "3-1", "a", "-2"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="not one of"):
        generate(exports["gan"], [0], label="no-such-class")
    with pytest.raises(ConfigError, match="not text-conditional"):
        generate(exports["class"], [0], embedding=np.zeros(384, np.float32))
    assert main(["sample", str(exports["text"].path), "--prompt", "a dog"]) == 2
    assert "'a dog' was not exported" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--steps must be in"):
        ddim.timesteps(1000, 0)
    # a corrupted graph and a missing sidecar name the file
    folder = tmp_path / "copy"
    folder.mkdir()
    src = exports["gan"].path.parent
    (folder / "model.onnx").write_bytes((src / "model.onnx").read_bytes()[:-10])
    (folder / "model.json").write_bytes((src / "model.json").read_bytes())
    with pytest.raises(DataError, match="model.onnx is corrupt"):
        OnnxModel.load(folder / "model.onnx")
    assert main(["sample", str(folder / "model.onnx")]) == 2
    (folder / "model.json").write_text(json.dumps({"format": "other", "kind": "gan"}))
    with pytest.raises(DataError, match="not a muselab export sidecar"):
        OnnxModel.load(folder)
    (folder / "model.json").unlink()
    assert main(["sample", str(folder / "model.onnx"), "--seeds", "0"]) == 2
    assert "no model.json next to it" in capsys.readouterr().err
