"""Cross-modal jobs in the studio: image -> music -> video, triptych, inspire; the parts of a
work stay linked in the gallery; bad input is refused at submit time."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def xclient(settings: Any) -> Iterator[Any]:
    """A TestClient of the studio with the cross-modal router included."""
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app
    from muselab.studio.routers import crossmodal

    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/crossmodal" for r in app.routes):
        app.include_router(crossmodal.router)
    with TestClient(app) as c:
        yield c


def _upload(client: Any, img: np.ndarray, name: str) -> int:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    res = client.post("/api/style/uploads", files={"file": (name, buf.getvalue(), "image/png")})
    assert res.status_code == 201, res.text
    return int(res.json()["id"])


def _photo(name: str, side: int = 64) -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(getattr(skimage.data, name)()).resize((side, side)))


def _run(client: Any, settings: Any, kind: str, params: dict[str, Any]) -> list[int]:
    from muselab.studio.worker import Worker

    res = client.post("/api/jobs", json={"kind": kind, "params": params})
    assert res.status_code == 201, res.text
    done = Worker(settings).run_once()
    assert done is not None and done.state == "done", done and done.error
    return list(done.result["items"])


def test_image_to_music_to_video_keeps_the_chain(xclient: Any, settings: Any) -> None:
    image = _upload(xclient, _photo("coffee"), "coffee.png")
    (piece,) = _run(xclient, settings, "image2music", {"image": image, "bars": 2, "seed": 1})
    w = xclient.get(f"/api/crossmodal/works/{piece}").json()
    assert w["item"]["kind"] == "music" and w["item"]["source"] == "image2music"
    assert [p["id"] for p in w["parents"]] == [image]
    assert w["item"]["params"]["conditions"]["key"] and w["item"]["midi_url"]
    (video,) = _run(xclient, settings, "music2video",
                    {"piece": piece, "fps": 4, "size": 32, "seed": 0})
    v = xclient.get(f"/api/crossmodal/works/{video}").json()
    assert v["item"]["kind"] == "video" and [p["id"] for p in v["parents"]] == [piece]
    duration, frames = v["item"]["params"]["duration"], v["item"]["params"]["frames"]
    assert frames == max(1, round(duration * 4))
    body = xclient.get(v["item"]["url"])
    assert body.status_code == 200 and len(body.content) > 100
    chain = xclient.get(f"/api/crossmodal/works/{piece}").json()
    assert [c["id"] for c in chain["children"]] == [video]  # the piece knows its video


def test_triptych_parts_are_linked_under_the_bundle(text_run: Path, settings: Any,
                                                    tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app
    from muselab.studio.routers import crossmodal

    s = settings.model_copy(update={"runs": text_run.parent})
    app = create_app(s)
    app.include_router(crossmodal.router)
    with TestClient(app) as client:
        items = _run(client, s, "triptych", {"theme": "autumn rain at night", "lang": "zh",
                                             "seed": 2, "image_model": text_run.name,
                                             "bars": 1})
        bundle, poem, image, music = items
        w = client.get(f"/api/crossmodal/works/{bundle}").json()
        assert w["item"]["kind"] == "triptych" and w["item"]["mime"] == "application/zip"
        assert sorted(p["kind"] for p in w["parents"]) == ["image", "music", "poem"]
        assert {p["id"] for p in w["parents"]} == {poem, image, music}
        manifest = w["item"]["params"]["manifest"]
        assert manifest["theme"] == "autumn rain at night" and len(manifest["parts"]) == 3
        z = zipfile.ZipFile(io.BytesIO(client.get(w["item"]["download_url"]).content))
        assert sum(n.endswith("manifest.json") for n in z.namelist()) == 1
        p = client.get(f"/api/crossmodal/works/{poem}").json()
        assert [c["id"] for c in p["children"]] == [bundle]
        assert "《" in p["item"]["params"]["text"]


def test_inspire_job_links_board_and_variations(xclient: Any, settings: Any,
                                                emoji_home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import muselab.crossmodal.inspire as ins

    monkeypatch.setenv("MUSELAB_HOME", str(emoji_home))  # emoji, backbone and stylizer
    full = ins.training_set
    monkeypatch.setattr(ins, "training_set", lambda limit: full(256))  # fast neighbours
    a = _upload(xclient, _photo("chelsea"), "cat.png")
    b = _upload(xclient, _photo("rocket"), "rocket.png")
    items = _run(xclient, settings, "inspire", {"items": [a, b], "variations": 1,
                                                "surprise": 1, "remix": True})
    board = xclient.get(f"/api/crossmodal/works/{items[0]}").json()
    assert "moodboard" in board["item"]["tags"]
    assert {p["id"] for p in board["parents"]} == {a, b}
    works = board["item"]["params"]["works"]
    assert len(works) == 2 and works[0]["palette"] and works[0]["neighbours"]
    kids = {c["params"]["op"]: c for c in xclient.get(f"/api/crossmodal/works/{a}").json()[
        "children"]}
    assert "variation" in kids and "moodboard" in kids
    variation = xclient.get(f"/api/crossmodal/works/{kids['variation']['id']}").json()
    assert [p["id"] for p in variation["parents"]] == [a]


def test_bad_input_is_refused_at_submit(xclient: Any) -> None:
    image = _upload(xclient, np.full((32, 32, 3), 9, np.uint8), "dark.png")
    cases = [("music2video", {"piece": image}, 400, "not a music"),
             ("music2video", {"piece": 9999}, 404, "9999"),
             ("image2music", {"image": 9999}, 404, "9999"),
             ("triptych", {"theme": "rain", "lang": "fr"}, 400, "lang"),
             ("triptych", {"theme": "   "}, 400, "theme"),
             ("inspire", {"items": []}, 400, "items")]
    for kind, params, status, words in cases:
        res = xclient.post("/api/jobs", json={"kind": kind, "params": params})
        assert res.status_code == status, (kind, res.text)
        assert words in res.json()["error"], res.text
    page = xclient.get("/crossmodal")
    assert page.status_code == 200 and "Theme &rarr; triptych" in page.text
    assert xclient.get("/api/crossmodal/works/9999").status_code == 404


def test_uploaded_wav_becomes_a_piece_and_a_video(xclient: Any, settings: Any,
                                                  tmp_path: Path) -> None:
    from tests.crossmodal.test_music2video import click_track

    wav = click_track(tmp_path / "beat.wav", bpm=120.0, seconds=1.5)
    res = xclient.post("/api/crossmodal/pieces",
                       files={"file": ("beat.wav", wav.read_bytes(), "audio/wav")})
    assert res.status_code == 201, res.text
    piece = res.json()
    assert piece["kind"] == "music" and piece["audio_url"] and piece["source"] == "upload"
    assert abs(piece["params"]["tempo"] - 120.0) < 6.0
    assert xclient.get(piece["audio_url"]).content == wav.read_bytes()
    (video,) = _run(xclient, settings, "music2video", {"piece": piece["id"], "fps": 4,
                                                        "size": 32})
    v = xclient.get(f"/api/crossmodal/works/{video}").json()
    assert v["item"]["params"]["frames"] == 6 and [p["id"] for p in v["parents"]] == [
        piece["id"]]
    silent = tmp_path / "silent.wav"
    from scipy.io import wavfile

    wavfile.write(silent, 8000, np.zeros(8000, np.int16))
    for name, data, words in (("silent.wav", silent.read_bytes(), "silent"),
                              ("empty.wav", b"", "empty"),
                              ("notes.txt", b"hello", "MIDI (.mid) or WAV")):
        res = xclient.post("/api/crossmodal/pieces", files={"file": (name, data)})
        assert res.status_code == 415 and words in res.json()["error"], res.text
        assert "/tmp" not in res.json()["error"]  # no server paths in messages
    assert xclient.get("/api/gallery?kind=music").json()["total"] == 1  # nothing else kept
