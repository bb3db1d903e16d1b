"""The Stylize, Music and Poetry pages' API (TestClient): uploads, live preview, keep with
lineage, composing to MIDI/WAV/piano roll, writing constrained poems, bad input."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from muselab.image.io import read_png_metadata
from tests.style.conftest import photo, style_home  # noqa: F401  (fixture)


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _upload(client: Any, img: np.ndarray, name: str) -> dict[str, Any]:
    res = client.post("/api/style/uploads", files={"file": (name, _png_bytes(img), "image/png")})
    assert res.status_code == 201, res.text
    return dict(res.json())


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)


@pytest.fixture
def styled(client: Any, style_home: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
           ) -> tuple[Any, int, int]:
    """The client with the ONNX stylizer available, a content (96x128) and a style upload."""
    monkeypatch.setenv("MUSELAB_HOME", str(style_home))
    content = _upload(client, photo("astronaut", 128)[16:112], "astronaut.png")
    style = _upload(client, photo("coffee", 96), "coffee.png")
    return client, content["id"], style["id"]


def test_stylize_preview_alpha_colour_and_keep(styled: tuple[Any, int, int],
                                               settings: Any) -> None:
    client, content, style = styled
    item = client.get(f"/api/gallery/{content}").json()
    assert (item["kind"], item["source"], item["prompt"]) == ("image", "upload", "astronaut.png")

    def preview(**kw: Any) -> np.ndarray:
        res = client.post("/api/style/preview", json={"content": content, "style": style, **kw})
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        return _decode(res.content)

    full, again = preview(alpha=0.0), preview(alpha=0.0)
    assert full.shape == (96, 128, 3) and np.array_equal(full, again)  # deterministic
    original = _decode(client.get(f"/api/gallery/{content}/file").content)
    kept_content = preview(alpha=1.0)  # alpha 1 keeps the content
    assert np.abs(kept_content - original).mean() < 2.0
    half = preview(alpha=0.5)
    d_full, d_half = (np.abs(x - original).mean() for x in (full, half))
    assert d_full > 10 and d_full > d_half > 1  # alpha blends towards the content
    small = preview(alpha=0.0, max_side=64)
    assert small.shape == (48, 64, 3)
    lum = preview(alpha=0.0, color="luminance")

    def chroma(x: np.ndarray) -> np.ndarray:
        return x - x.mean(axis=2, keepdims=True)

    # luminance-only transfer keeps the content's colours closer than full transfer does
    assert np.abs(chroma(lum) - chroma(original)).mean() < np.abs(
        chroma(full) - chroma(original)).mean()
    res = client.post("/api/style/keep", json={"content": content, "style": style,
                                                "alpha": 0.25, "max_side": 128})
    assert res.status_code == 201, res.text
    kept = res.json()
    assert kept["parents"] == sorted([content, style]) and kept["source"] == "stylize"
    assert kept["params"]["alpha"] == 0.25 and kept["model"] == "arbitrary-stylizer"
    assert len(kept["weights_hash"]) == 64
    from muselab.store import gallery
    from muselab.store.db import connect

    file = gallery.get_item(connect(settings.db_path()), kept["id"]).file
    meta = read_png_metadata(settings.media_dir() / file)
    assert meta["alpha"] == 0.25 and meta["content"] == f"gallery:{content}"
    assert meta["styles"] == [f"gallery:{style}"] and "Ghiasi" in meta["onnx"]
    lineage = client.get(f"/api/gallery/{kept['id']}").json()["lineage"]
    assert {p["id"] for p in lineage["parents"]} == {content, style}


def test_stylize_job_runs_in_the_worker(styled: tuple[Any, int, int], settings: Any) -> None:
    from muselab.studio.worker import Worker

    client, content, style = styled
    job = client.post("/api/jobs", json={"kind": "stylize", "params": {
        "content": content, "style": style, "alpha": 0.5, "max_side": 96}})
    assert job.status_code == 201, job.text
    done = Worker(settings).run_once()
    assert done is not None and done.state == "done", done and done.error
    item = client.get(f"/api/gallery/{done.result['items'][0]}").json()
    assert item["job_id"] == done.id and item["parents"] == sorted([content, style])


def test_stylize_bad_input(client: Any, settings: Any, tmp_path: Path) -> None:
    res = client.post("/api/style/uploads", files={"file": ("notes.png", b"not an image",
                                                            "image/png")})
    assert res.status_code == 415 and "notes.png" in res.json()["error"]
    big = client.post("/api/style/uploads", files={"file": ("big.png", b"x" * (2 << 20))})
    assert big.status_code == 413 and "limit" in big.json()["error"]
    assert client.get("/api/gallery").json()["total"] == 0  # nothing stored
    assert not [p for p in Path(settings.media_dir()).rglob("*") if p.is_file()]
    img = _upload(client, np.full((40, 40, 3), 200, np.uint8), "grey.png")
    res = client.post("/api/style/preview", json={"content": img["id"], "style": 999})
    assert res.status_code == 404 and "999" in res.json()["error"]
    res = client.post("/api/jobs", json={"kind": "stylize", "params": {"content": 999,
                                                                       "style": img["id"]}})
    assert res.status_code == 404 and "999" in res.json()["error"]
    res = client.post("/api/style/preview", json={"content": img["id"], "style": img["id"],
                                                   "alpha": 2})
    assert res.status_code == 422 and "alpha" in res.json()["error"]
    res = client.post("/api/style/preview", json={"content": img["id"], "style": img["id"],
                                                   "color": "sepia"})
    assert res.status_code == 422 and "color" in res.json()["error"]
    # this test's data home has no ONNX files: the message says how to get them
    res = client.post("/api/style/preview", json={"content": img["id"], "style": img["id"]})
    assert res.status_code == 400 and "muselab style fetch" in res.json()["error"]


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_compose_stores_midi_wav_and_piano_roll(client: Any) -> None:
    body = {"bars": 2, "key": "G major", "meter": "3/4", "tempo": 100, "seed": 3}
    res = client.post("/api/music/compose", json=body)
    assert res.status_code == 201, res.text
    a = res.json()
    assert (a["kind"], a["source"], a["seed"], a["model"]) == ("music", "music", 3,
                                                               "bach-chorale")
    assert a["params"]["key"] == "G major" and a["params"]["notes"] > 0
    roll = client.get(a["url"])
    assert roll.headers["content-type"] == "image/png" and roll.content[:4] == b"\x89PNG"
    wav = client.get(a["audio_url"])
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    assert len(wav.content) > 22050  # more than half a second of 16-bit audio
    mid = client.get(a["midi_url"])
    assert mid.content[:4] == b"MThd" and "attachment" in mid.headers["content-disposition"]
    b = client.post("/api/music/compose", json=body).json()
    assert client.get(b["midi_url"]).content == mid.content  # same seed, same piece
    c = client.post("/api/music/compose", json={**body, "seed": 4}).json()
    assert client.get(c["midi_url"]).content != mid.content
    assert [i["id"] for i in client.get("/api/gallery?kind=music").json()["items"]] == [
        c["id"], b["id"], a["id"]]
    assert client.get(f"/api/music/{a['id']}").json()["audio_url"] == a["audio_url"]
    assert a["params"]["cadence"] is True  # the closing chord is the default, and recorded
    free = client.post("/api/music/compose", json={**body, "cadence": False}).json()
    assert free["params"]["cadence"] is False
    assert client.get(free["midi_url"]).content != mid.content


def test_compose_job_and_bad_input(client: Any, settings: Any) -> None:
    from muselab.studio.worker import Worker

    job = client.post("/api/jobs", json={"kind": "compose", "params": {"bars": 1, "seed": 1}})
    assert job.status_code == 201, job.text
    done = Worker(settings).run_once()
    assert done is not None and done.state == "done", done and done.error
    piece = client.get(f"/api/music/{done.result['items'][0]}").json()
    assert piece["job_id"] == done.id and piece["params"]["bars"] == 1
    for body, word in (({"key": "H major"}, "H major"), ({"meter": "7/8"}, "7/8"),
                       ({"model": "no-such-model"}, "no-such-model")):
        res = client.post("/api/music/compose", json=body)
        assert res.status_code == 400 and word in res.json()["error"], res.text
        res = client.post("/api/jobs", json={"kind": "compose", "params": body})
        assert res.status_code == 400 and word in res.json()["error"], res.text
    assert client.post("/api/music/compose", json={"style": "jazz"}).status_code == 422
    assert client.post("/api/music/compose", json={"bars": 0}).status_code == 422
    assert client.post("/api/music/compose", json={"temperature": 1e-300}).status_code == 422
    res = client.post("/api/music/compose", json={"bars": 9})
    assert res.status_code == 400 and "as a job" in res.json()["error"]
    res = client.post("/api/music/compose", json={"model": "/etc/passwd"})
    assert res.status_code == 422 and "model" in res.json()["error"]  # names, not paths
    tiny = client.post("/api/style/uploads", files={"file": ("dot.png", _png_bytes(
        np.zeros((8, 8, 3), np.uint8)))})
    assert tiny.status_code == 415 and "dot.png: not a usable image (8x8 is too small" in (
        tiny.json()["error"])
    image = _upload(client, np.zeros((16, 16, 3), np.uint8), "black.png")
    res = client.get(f"/api/music/{image['id']}/audio")
    assert res.status_code == 404 and "not a piece of music" in res.json()["error"]
    assert client.get("/api/music/123456/midi").status_code == 404


def test_poems_follow_form_acrostic_and_seed(client: Any) -> None:
    from muselab.poetry.prosody import is_hanzi

    body = {"form": "jueju5", "theme": "春夜", "acrostic": "春夏秋冬", "seed": 2, "n": 2}
    res = client.post("/api/poetry/write", json=body)
    assert res.status_code == 201, res.text
    items = res.json()["items"]
    assert len(items) == 2 and all(i["kind"] == "poem" for i in items)
    for item in items:
        lines = [ln for ln in item["params"]["text"].replace("，", "\n").replace("。", "\n")
                 .splitlines() if ln]
        assert len(lines) == 4 and all(len(ln) == 5 and all(map(is_hanzi, ln)) for ln in lines)
        assert "".join(ln[0] for ln in lines) == "春夏秋冬"
        assert item["prompt"] == "春夜" and item["model"] == "tang-poems"
        text = client.get(item["url"])
        assert text.headers["content-type"].startswith("text/plain")
        assert text.content.decode("utf-8").strip() == item["params"]["text"]
    again = client.post("/api/poetry/write", json=body).json()["items"]
    assert [i["params"]["text"] for i in again] == [i["params"]["text"] for i in items]
    assert items[0]["params"]["text"] != items[1]["params"]["text"]
    seven = client.post("/api/poetry/write", json={"form": "lushi7", "seed": 0,
                                                   "constrained": True}).json()["items"][0]
    assert seven["params"]["text"].count("。") == 4 and seven["params"]["form"] == "lushi7"
    assert client.get("/api/poetry/forms").json()["zh"][0] == "jueju5"


def test_poetry_bad_input(client: Any) -> None:
    res = client.post("/api/poetry/write", json={"form": "sonnet9"})
    assert res.status_code == 400 and "sonnet9" in res.json()["error"]
    res = client.post("/api/poetry/write", json={"acrostic": "abcd"})
    assert res.status_code == 400 and "not a Chinese character" in res.json()["error"]
    res = client.post("/api/poetry/write", json={"model": "no-such-poet"})
    assert res.status_code == 400 and "train one" in res.json()["error"]
    assert client.post("/api/poetry/write", json={"lang": "fr"}).status_code == 422
    assert client.post("/api/poetry/write", json={"model": "../models/x"}).status_code == 422
    assert client.get("/api/gallery?kind=poem").json()["total"] == 0


def test_pages_are_built(client: Any) -> None:
    for page in ("stylize", "music", "poetry"):
        html = client.get(f"/{page}").text
        assert "not built yet" not in html and f"/static/{page}.js" in html
    kinds = {k["name"] for k in client.get("/api/jobs/kinds").json()}
    assert {"stylize", "compose", "poem"} <= kinds
