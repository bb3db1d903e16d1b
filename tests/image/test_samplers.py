"""DDIM/DDPM sampling, guidance, SDEdit and inpainting on a tiny trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from muselab.errors import ConfigError
from muselab.image.diffusion_pipeline import DiffusionPipeline
from muselab.image.samplers import SamplerConfig, sample, timesteps
from muselab.image.schedule import NoiseSchedule
from muselab.models.zoo import load_pipeline


@pytest.fixture(scope="module")
def pipe(text_run: Path, emoji_home: Path) -> DiffusionPipeline:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(emoji_home))
        p = load_pipeline(text_run, device="cpu")
    assert isinstance(p, DiffusionPipeline)
    return p


@pytest.fixture(autouse=True)
def _home(emoji_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))


FAST = SamplerConfig(steps=4)


def test_timesteps_run_from_last_to_zero() -> None:
    assert timesteps(1000, 5) == [999, 749, 500, 250, 0]
    with pytest.raises(ConfigError):
        timesteps(10, 11)


def test_ddim_eta0_is_deterministic_and_per_seed(pipe: DiffusionPipeline) -> None:
    a = pipe.text2img("a red heart", [3, 4], sampler=FAST)
    b = pipe.text2img("a red heart", [3, 4], sampler=FAST)
    c = pipe.text2img("a red heart", [4], sampler=FAST)
    assert a.shape == (2, 16, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a[1], c[0])
    assert not np.array_equal(a[0], a[1])


def test_guidance_one_is_the_conditional_model(pipe: DiffusionPipeline) -> None:
    task = pipe.diffusion
    unet = task.inference_module("unet")
    cond = torch.randn(2, unet.cfg.cond_dim)
    x, t = torch.randn(2, *task.sample_z(1).shape[1:]), torch.tensor([10, 500])
    from muselab.image.diffusion import guided

    with torch.no_grad():
        assert torch.equal(guided(unet, cond, None, None, 1.0)(x, t), unet(x, t, cond))
        two = guided(unet, cond, None, None, 3.0)(x, t)
        c, u = unet(x, t, cond), unet(x, t, None)
        assert torch.allclose(two, u + 3.0 * (c - u), atol=1e-5)


def test_negative_prompt_changes_the_image(pipe: DiffusionPipeline) -> None:
    a = pipe.text2img("a cat", [1], sampler=FAST, guidance=5.0)
    b = pipe.text2img("a cat", [1], sampler=FAST, guidance=5.0, negative="a dog")
    assert not np.array_equal(a, b)


def test_sdedit_strength_zero_returns_the_input(pipe: DiffusionPipeline) -> None:
    init = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    same = pipe.text2img("a cat", [1], sampler=FAST, init=init, strength=0.0)
    assert np.array_equal(same[0], init)
    full = pipe.text2img("a cat", [1], sampler=FAST, init=init, strength=1.0)
    assert not np.array_equal(full[0], init)


def test_inpainting_keeps_the_unmasked_region(pipe: DiffusionPipeline) -> None:
    init = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    out = pipe.text2img("a cat", [2], sampler=FAST, init=init, mask=mask, resample=2)[0]
    assert np.array_equal(out[~mask], init[~mask])
    assert not np.array_equal(out[mask], init[mask])


def test_ddpm_is_ddim_with_eta_one() -> None:
    s = NoiseSchedule(steps=50)
    model = lambda x, t: 0.1 * x  # noqa: E731 - any deterministic eps model
    noise = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    run = lambda cfg: sample(model, s, noise, cfg, torch.Generator().manual_seed(7))  # noqa: E731
    ddpm = run(SamplerConfig(method="ddpm", steps=10))
    assert torch.equal(ddpm, run(SamplerConfig(method="ddim", steps=10, eta=1.0)))
    assert not torch.equal(ddpm, run(SamplerConfig(method="ddim", steps=10, eta=0.0)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"strength": 1.5, "init": np.zeros((16, 16, 3), np.uint8)}, "strength"),
     ({"init": np.zeros((16, 16, 3), np.uint8), "mask": np.zeros((8, 8), bool)}, "mask is 8x8"),
     ({"init": np.zeros((20, 20, 3), np.uint8)}, "input image is (20, 20, 3)"),
     ({"mask": np.zeros((16, 16), bool)}, "mask needs an input image"),
     ({"guidance": -1.0}, "guidance")],
)
def test_bad_edit_inputs_are_clear_errors(pipe: DiffusionPipeline, kwargs: dict,
                                          message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pipe.text2img("a cat", [1], sampler=FAST, **kwargs)


def test_empty_prompt_is_refused(pipe: DiffusionPipeline) -> None:
    from muselab.errors import MuselabError

    with pytest.raises(MuselabError, match="empty"):
        pipe.text2img("  ", [1], sampler=FAST)
