"""REST API of the studio (TestClient): generation, lineage, gallery, ratings, errors."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from muselab.image.io import read_png_metadata


def _png(client: Any, item: dict[str, Any]) -> np.ndarray:
    res = client.get(item["url"])
    assert res.status_code == 200
    return np.asarray(Image.open(io.BytesIO(res.content)))


def test_models_lists_the_run(client: Any, model_id: str) -> None:
    m = client.get(f"/api/models/{model_id}").json()
    assert (m["recipe"], m["resolution"], m["step"]) == ("hinge-gan", 32, 4)
    res = client.get("/api/models/nope")
    assert res.status_code == 404 and "GET /api/models" in res.json()["error"]
    assert client.get("/api/models/..").status_code == 404


def test_generate_is_seeded_and_stored(client: Any, model_id: str, settings: Any) -> None:
    a = client.post("/api/generate", json={"model": model_id, "seeds": [3, 4]}).json()["items"]
    b = client.post("/api/generate", json={"model": model_id, "seed": 3, "n": 2}).json()["items"]
    assert [i["seed"] for i in a] == [3, 4]
    assert np.array_equal(_png(client, a[0]), _png(client, b[0]))  # same seed, same image
    assert not np.array_equal(_png(client, a[0]), _png(client, a[1]))
    assert _png(client, a[0]).shape == (32, 32, 3)
    meta = read_png_metadata(settings.media_dir() / _file_of(settings, a[0]["id"]))
    assert meta["seed"] == 3 and meta["model"] == "hinge-gan"
    assert len(a[0]["weights_hash"]) == 64
    assert client.get("/api/gallery").json()["total"] == 4


def _file_of(settings: Any, item_id: int) -> str:
    from muselab.store import gallery
    from muselab.store.db import connect

    return gallery.get_item(connect(settings.db_path()), item_id).file


def test_variations_strength_and_lineage(client: Any, model_id: str) -> None:
    parent = client.post("/api/generate", json={"model": model_id, "seeds": [7]}).json()["items"][0]
    same = client.post("/api/generate/variations",
                       json={"item": parent["id"], "n": 2, "strength": 0.0}).json()["items"]
    assert np.array_equal(_png(client, same[0]), _png(client, parent))  # strength 0: no change
    far = client.post("/api/generate/variations",
                      json={"item": parent["id"], "n": 3, "strength": 0.8, "seed": 1}).json()
    assert all(i["parents"] == [parent["id"]] for i in far["items"])
    detail = client.get(f"/api/gallery/{far['items'][0]['id']}").json()
    assert detail["lineage"]["parents"][0]["id"] == parent["id"]
    assert len(client.get(f"/api/gallery/{parent['id']}").json()["children"]) == 5
    more = client.post(f"/api/gallery/{parent['id']}/more?n=2&seed=1&strength=0.8").json()["items"]
    assert np.array_equal(_png(client, more[0]), _png(client, far["items"][0]))  # seeded


def test_breed_crossover_and_lineage(client: Any, model_id: str) -> None:
    ps = client.post("/api/generate", json={"model": model_id, "seeds": [1, 2]}).json()["items"]
    ids = [p["id"] for p in ps]
    for crossover in ("uniform", "slerp"):
        body = {"parents": ids, "n": 6, "strength": 0.1, "seed": 5, "crossover": crossover}
        kids = client.post("/api/generate/breed", json=body).json()["items"]
        again = client.post("/api/generate/breed", json=body).json()["items"]
        assert len(kids) == 6 and all(set(k["parents"]) <= set(ids) for k in kids)
        assert np.array_equal(_png(client, kids[0]), _png(client, again[0]))
    res = client.post("/api/generate/breed", json={"parents": [999]})
    assert res.status_code == 404 and "image 999" in res.json()["error"]


def test_explore_directions_and_walk(client: Any, model_id: str) -> None:
    d = client.get(f"/api/models/{model_id}/directions?k=4").json()
    assert len(d["sigma"]) == 4 and all(s > 0 for s in d["sigma"])
    assert d["explained"] == sorted(d["explained"], reverse=True)
    base = client.post("/api/generate/explore", json={"model": model_id, "seed": 2})
    moved = client.post("/api/generate/explore",
                        json={"model": model_id, "seed": 2, "coeffs": [3, 0, 0, 0]})
    assert base.headers["content-type"] == "image/png"
    assert base.content != moved.content
    assert client.get("/api/gallery").json()["total"] == 0  # previews are not stored
    kept = client.post("/api/generate/explore/keep",
                       json={"model": model_id, "seed": 2, "coeffs": [3]}).json()
    assert kept["source"] == "explore" and kept["params"]["coeffs"] == [3.0]
    items = client.post("/api/generate", json={"model": model_id, "seeds": [0, 1]}).json()
    gif = client.post("/api/generate/interpolate",
                      json={"items": [i["id"] for i in items["items"]], "frames": 3}).json()
    assert gif["kind"] == "gif" and gif["mime"] == "image/gif"
    with Image.open(io.BytesIO(client.get(gif["url"]).content)) as im:
        assert im.n_frames == 6  # 2 images x 3 frames, looping
    dl = client.get(gif["download_url"])
    assert f"muselab-{gif['id']}.gif" in dl.headers["content-disposition"]


def test_gallery_filters_delete_restore_and_tags(client: Any, model_id: str) -> None:
    items = client.post("/api/generate", json={"model": model_id, "n": 3}).json()["items"]
    a = items[0]["id"]
    assert client.put(f"/api/gallery/{a}/tags", json={"tags": ["Sky", "sky", "blue"]}).json()[
        "tags"] == ["blue", "sky"]
    assert [i["id"] for i in client.get("/api/gallery?q=sky").json()["items"]] == [a]
    assert client.get("/api/gallery?source=create&limit=1").json()["total"] == 3
    assert client.get("/api/gallery/facets").json()["tags"] == ["blue", "sky"]
    assert client.delete(f"/api/gallery/{a}").json()["deleted"] is True
    assert client.get("/api/gallery").json()["total"] == 2
    assert client.get(f"/api/gallery/{a}").status_code == 404
    assert client.get(f"/api/gallery/{a}/file").status_code == 200  # lineage keeps pictures
    assert client.post(f"/api/gallery/{a}/restore").json()["deleted"] is False
    assert client.get("/api/gallery").json()["total"] == 3


def test_ratings(client: Any, model_id: str) -> None:
    items = client.post("/api/generate", json={"model": model_id, "n": 2}).json()["items"]
    res = client.post("/api/ratings", json={"item": items[0]["id"], "value": 5})
    assert res.status_code == 201 and res.json()["rating"] == 5
    client.post("/api/ratings", json={"item": items[0]["id"], "value": 2})
    assert client.get(f"/api/gallery/{items[0]['id']}").json()["rating"] == pytest.approx(3.5)
    assert client.get("/api/ratings/next").json()["id"] == items[1]["id"]  # the unrated one
    assert client.get("/api/gallery?sort=rating").json()["items"][0]["id"] == items[0]["id"]
    from muselab.store.db import connect
    from muselab.store.ratings import RatingStore

    latest = RatingStore(connect(client.app.state.settings.db_path())).latest(rater="me")
    assert [r.stars for r in latest] == [2]  # the value model's store has the newest rating
    bad = client.post("/api/ratings", json={"item": items[0]["id"], "value": 9})
    assert bad.status_code == 422 and bad.json()["error"].startswith("value:")
    assert client.post("/api/ratings", json={"item": 4242, "value": 3}).status_code == 404


@pytest.mark.parametrize("method,path,body,status,needle", [
    ("get", "/api/gallery/12345", None, 404, "image 12345 does not exist"),
    ("get", "/api/jobs/777", None, 404, "job 777 does not exist"),
    ("post", "/api/jobs/777/cancel", None, 404, "job 777"),
    ("post", "/api/generate", {"model": "missing"}, 404, "model 'missing'"),
    ("post", "/api/generate", {"model": "x", "n": 0}, 422, "n: "),
    ("post", "/api/generate/variations", {"item": 1, "strength": 2}, 422, "strength"),
    ("post", "/api/jobs", {"kind": "nope"}, 400, "unknown job kind 'nope'"),
    ("post", "/api/jobs", {"kind": "sample", "params": {"n": 1}}, 400, "sample job: model"),
    ("post", "/api/train", {"model": "nope"}, 400, "unknown model 'nope'"),
    ("post", "/api/train", {"data": "upload:abc"}, 404, "no such upload"),
    ("post", "/api/train", {"resolution": 33}, 400, "data.resolution"),
    ("get", "/api/nothing", None, 404, "the API is documented at /docs"),
    ("get", "/api/train/runs/99999/log", None, 404, "run '99999'"),
])
def test_errors_are_json_with_a_message(client: Any, method: str, path: str, body: Any,
                                        status: int, needle: str) -> None:
    res = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert res.status_code == status, res.text
    assert needle in res.json()["error"]


def test_token_guard(settings: Any) -> None:
    from fastapi.testclient import TestClient

    from muselab.studio.app import create_app

    c = TestClient(create_app(settings.model_copy(update={"token": "s3cret"})))
    res = c.get("/api/models")
    assert res.status_code == 401 and "token" in res.json()["error"]
    assert c.get("/api/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    page = c.get("/create?token=s3cret")
    assert page.status_code == 200 and "muselab_token" in page.headers["set-cookie"]
    assert c.get("/api/models").status_code == 200  # the cookie now carries it


def test_exposure_needs_a_token(settings: Any) -> None:
    from muselab.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a token"):
        settings.model_copy(update={"host": "0.0.0.0"}).check_exposure()
    settings.model_copy(update={"host": "0.0.0.0", "token": "t"}).check_exposure()
    settings.check_exposure()  # 127.0.0.1 is fine without


def test_pages_render(client: Any) -> None:
    for page in ("create", "breed", "explore", "gallery", "rate", "train", "jobs"):
        res = client.get(f"/{page}")
        assert res.status_code == 200 and f'data-page="{page}"' in res.text
    assert "is not built yet" not in client.get("/music").text  # Stylize, Music, Poetry landed
    assert client.get("/", follow_redirects=False).headers["location"] == "/create"
    assert client.get("/static/common.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "muselab studio"
