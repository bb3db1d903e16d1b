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
