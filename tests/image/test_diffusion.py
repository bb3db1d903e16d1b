"""Diffusion recipes under the one Trainer: finite steps, exact resume, latent diffusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from muselab.errors import ConfigError
from muselab.image.diffusion_pipeline import DiffusionPipeline
from muselab.image.samplers import SamplerConfig
from muselab.models.zoo import load_pipeline
from muselab.train.run import resume_run, start_run
from tests.tiny import tiny_config

TEXT = {"data": {"source": "emoji", "resolution": 16, "limit": 64, "text": True}}


@pytest.fixture(autouse=True)
def _home(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))


def test_text_run_trains_with_finite_loss_and_no_captions_in_the_model(text_run: Path) -> None:
    log = [json.loads(line) for line in (text_run / "log.jsonl").read_text().splitlines()]
    assert log and all(np.isfinite(r["loss"]) for r in log)
    info = json.loads((text_run / "config.json").read_text())["data_info"]
    assert info["num_captions"] == 64 and "captions" not in info


def test_resume_is_exact(tmp_path: Path) -> None:
    straight = start_run(tiny_config("text-diffusion", steps=4, extra=TEXT), tmp_path)
    straight.fit()
    first = start_run(tiny_config("text-diffusion", steps=2, extra=TEXT), tmp_path)
    first.fit()
    resumed = resume_run(first.run_dir, steps=4)
    resumed.fit()
    a = load_file(str(straight.run_dir / "model.safetensors"))
    b = load_file(str(resumed.run_dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loss_goes_down_on_digits(tmp_path: Path) -> None:
    cfg = tiny_config("diffusion", steps=60, extra={"model_config": {"lr": 2e-3}},
                      sample_every=0, metric_every=0, checkpoint_every=60)
    trainer = start_run(cfg, tmp_path)
    trainer.fit()
    lines = (trainer.run_dir / "log.jsonl").read_text().splitlines()
    losses = [json.loads(x)["loss"] for x in lines]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


def test_text_diffusion_needs_captions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--text"):
        start_run(tiny_config("text-diffusion", steps=2), tmp_path).fit()


def test_latent_diffusion_on_a_trained_autoencoder(ae_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="autoencoder"):
        start_run(tiny_config("latent-diffusion", extra=TEXT), tmp_path)
    extra = {**TEXT, "model_config": {"autoencoder": str(ae_run), "net": {"attn_res": [8]}}}
    trainer = start_run(tiny_config("latent-diffusion", steps=2, extra=extra), tmp_path)
    trainer.fit()
    saved = json.loads((trainer.run_dir / "config.json").read_text())["model_config"]
    assert saved["autoencoder"] == "" and saved["autoencoder_source"].endswith(ae_run.name)
    assert saved["net"]["resolution"] == 8 and saved["net"]["channels"] == 4
    pipe = load_pipeline(trainer.run_dir, device="cpu")
    assert isinstance(pipe, DiffusionPipeline)
    out = pipe.text2img("a cat", [0, 1], sampler=SamplerConfig(steps=3))
    assert out.shape == (2, 16, 16, 3)
    # the frozen autoencoder travels inside the model and was not trained
    ae = load_file(str(ae_run / "model.safetensors"))
    ldm = load_file(str(trainer.run_dir / "model.safetensors"))
    for k, v in ae.items():
        if k.startswith("ae."):
            assert torch.equal(ldm[k], v), k


TEXT32 = {"data": {"source": "emoji", "resolution": 32, "limit": 64, "text": True}}
TINY_MLP = {"width": 32, "depth": 1}


def _vae_latent_run(vae_run: Path, runs: Path, steps: int = 2, **model: object) -> Path:
    extra = {**TEXT32, "model_config": {"autoencoder": str(vae_run), "mlp": TINY_MLP, **model}}
    trainer = start_run(tiny_config("latent-diffusion", steps=steps, extra=extra), runs)
    trainer.fit()
    return trainer.run_dir


def test_latent_diffusion_on_a_trained_vae(vae_run: Path, tmp_path: Path) -> None:
    run = _vae_latent_run(vae_run, tmp_path)
    saved = json.loads((run / "config.json").read_text())["model_config"]
    assert saved["latent_kind"] == "vae" and saved["mlp"]["dim"] == 16
    assert saved["mlp"]["cond_dim"] == 384 and saved["autoencoder"] == ""
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log and all(np.isfinite(r["loss"]) for r in log)
    # the frozen VAE travels inside the model, untouched
    vae = load_file(str(vae_run / "model.safetensors"))
    ldm = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(ldm["ae." + k.removeprefix("vae.")], v)
               for k, v in vae.items() if k.startswith("vae."))


def test_vae_latent_pipeline(vae_run: Path, tmp_path: Path) -> None:
    pipe = load_pipeline(_vae_latent_run(vae_run, tmp_path), device="cpu")
    assert isinstance(pipe, DiffusionPipeline) and pipe.is_text
    fast = SamplerConfig(steps=3)
    a = pipe.text2img("a red heart", [0, 1], sampler=fast)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, pipe.text2img("a red heart", [0, 1], sampler=fast))  # eta 0
    one = pipe.text2img("a red heart", [0], sampler=fast, guidance=1.0)
    cond = pipe.text2img("a red heart", [0], sampler=fast, guidance=1.0, negative="a cat")
    assert np.array_equal(one, cond)  # scale 1 is the conditional model, whatever the negative
    img = a[0]
    assert np.array_equal(pipe.text2img("x", [3], init=img, strength=0.0)[0], img)
    assert pipe.text2img("x", [3], init=img, strength=0.5, sampler=fast).shape == (1, 32, 32, 3)
    with pytest.raises(ConfigError, match="no pixels to mask"):
        pipe.text2img("x", [0], init=img, mask=np.ones((32, 32), bool), sampler=fast)


def test_vae_latent_loss_goes_down(vae_run: Path, tmp_path: Path) -> None:
    run = _vae_latent_run(vae_run, tmp_path, steps=80, lr=3e-3, warmup=0)
    losses = [json.loads(x)["loss"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:5])


def test_vae_posterior_mean_or_sample(vae_run: Path, tmp_path: Path) -> None:
    import dataclasses

    task = load_pipeline(_vae_latent_run(vae_run, tmp_path, vae_posterior="mean"),
                         device="cpu").diffusion
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(task.to_latent(x, torch.Generator().manual_seed(0)), task.to_latent(x))
    task.config = dataclasses.replace(task.config, vae_posterior="sample")
    assert not torch.equal(task.to_latent(x, torch.Generator().manual_seed(0)),
                           task.to_latent(x))
