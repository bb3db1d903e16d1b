"""The model zoo: shipped models load sha256-checked; export round trip; clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from muselab.errors import ConfigError, DataError
from muselab.image.pipeline import ImagePipeline
from muselab.models.zoo import find_pretrained, list_pretrained, load_pipeline

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def test_shipped_models_are_listed_with_cards_and_small_weights() -> None:
    names = {e.name for e in list_pretrained()}
    assert "emoji-vae32" in names
    for entry in list_pretrained():
        if entry.path.parent == REPO_MODELS:
            assert entry.weights.stat().st_size <= 20_000_000, entry.name
            assert "## Limits" in entry.card and "licence" in entry.card.lower()


def test_shipped_vae_gives_a_stored_pixel_slice() -> None:
    pipe = ImagePipeline.from_pretrained("emoji-vae32", device="cpu")
    images = pipe.generate([0, 1])
    assert images.shape == (2, 32, 32, 3)
    # Recorded once on this machine's CPU kernels (Pillow/torch versions pinned by the venv).
    expected = [[116, 108, 98], [190, 187, 183], [155, 149, 149]]
    assert np.abs(images[0, 16, 14:17].astype(int) - np.array(expected)).max() <= 2


def test_shipped_text_model_gives_a_stored_pixel_slice() -> None:
    from muselab.image.diffusion_pipeline import DiffusionPipeline
    from muselab.image.samplers import SamplerConfig

    pipe = ImagePipeline.from_pretrained("emoji-text32", device="cpu")
    assert isinstance(pipe, DiffusionPipeline) and pipe.is_text
    images = pipe.text2img("grinning face", [0, 1], sampler=SamplerConfig(steps=25),
                           guidance=3.0)
    assert images.shape == (2, 32, 32, 3)
    # Recorded once on this machine's CPU kernels (seed 1 draws a yellow face).
    expected = [[[232, 183, 138], [238, 207, 173], [250, 239, 226]],
                [[238, 200, 52], [201, 162, 49], [140, 104, 40]]]
    got = np.stack([images[0, 16, 14:17], images[1, 10, 8:11]]).astype(int)
    assert np.abs(got - np.array(expected)).max() <= 2


def test_export_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = ImagePipeline.from_pretrained("emoji-vae32", device="cpu")
    folder = pipe.save_pretrained(tmp_path / "copy", name="copy", description="d",
                                  licence="Apache-2.0")
    monkeypatch.setenv("MUSELAB_MODELS", str(tmp_path))
    again = ImagePipeline.from_pretrained("copy", device="cpu")
    assert np.array_equal(again.generate([5]), pipe.generate([5]))
    assert json.loads((folder / "meta.json").read_text())["recipe"] == "vae"


def test_corrupt_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(find_pretrained("emoji-vae32").path, tmp_path / "bad")
    meta = json.loads((tmp_path / "bad" / "meta.json").read_text())
    (tmp_path / "bad" / "meta.json").write_text(json.dumps({**meta, "name": "bad"}))
    with open(tmp_path / "bad" / "model.safetensors", "r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"0123456789")
    monkeypatch.setenv("MUSELAB_MODELS", str(tmp_path))
    with pytest.raises(DataError, match="sha256"):
        load_pipeline("bad", device="cpu")


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="emoji-vae32"):
        load_pipeline("no-such-model", device="cpu")
