"""The studio draws from a text prompt with a text-to-image model, and keeps the prompt
through variations and breeding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from muselab.image.diffusion_pipeline import DiffusionPipeline


@pytest.fixture
def text_client(settings: Any, text_run: Path, emoji_home: Path,
                monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app

    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))  # cached caption embeddings
    with TestClient(create_app(settings.model_copy(update={"runs": text_run.parent}))) as c:
        yield c


def test_prompt_reaches_a_text_model(text_client: Any, text_run: Path, settings: Any,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from muselab.image.io import read_png_metadata

    models = text_client.get("/api/models").json()
    assert [m["text"] for m in models if m["id"] == text_run.name] == [True]
    prompts: list[str | None] = []
    decode = DiffusionPipeline.decode

    def spy(self: DiffusionPipeline, z: Any, labels: Any = None, **kw: Any) -> np.ndarray:
        prompts.append(kw.get("prompt"))
        return decode(self, z, labels, **kw)

    monkeypatch.setattr(DiffusionPipeline, "decode", spy)
    ask = {"model": text_run.name, "seeds": [5, 6]}
    items = text_client.post("/api/generate", json={**ask, "prompt": "a cat"}).json()["items"]
    assert [it["prompt"] for it in items] == ["a cat", "a cat"]
    kids = text_client.post("/api/generate/variations",
                            json={"item": items[0]["id"], "n": 2, "strength": 0.3}).json()
    bred = text_client.post("/api/generate/breed",
                            json={"parents": [it["id"] for it in items], "n": 2}).json()
    assert [k["prompt"] for k in kids["items"] + bred["items"]] == ["a cat"] * 4
    plain = text_client.post("/api/generate", json={**ask, "prompt": ""}).json()["items"]
    assert prompts == ["a cat", "a cat", "a cat", None] and len(plain) == 2
    metas = [str(read_png_metadata(p)) for p in settings.media_dir().rglob("*.png")]
    assert len(metas) == 8 and sum("a cat" in m for m in metas) == 6  # the PNGs record it
