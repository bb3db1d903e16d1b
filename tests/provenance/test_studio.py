"""Studio: a generated work keeps a valid manifest through the gallery (download and
verify), and the gallery's badge endpoint reports each work's provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from muselab.provenance.verify import verify
from tests.studio.conftest import client, model_id, settings, tiny_runs  # noqa: F401


def test_gallery_round_trip_keeps_the_manifest(client: Any, model_id: str,  # noqa: F811
                                               tmp_path: Path) -> None:
    items = client.post("/api/generate", json={"model": model_id, "seeds": [3]}).json()["items"]
    res = client.get(items[0]["download_url"])
    assert res.status_code == 200
    copy = tmp_path / "downloaded.png"
    copy.write_bytes(res.content)
    v = verify(copy)
    assert (v.state, v.label) == ("verified", True)
    assert v.signature == "c2pa (this installation)"
    badges = client.get(f"/api/gallery/provenance?ids={items[0]['id']}").json()
    assert badges[str(items[0]["id"])]["state"] == "verified"
    assert badges[str(items[0]["id"])]["work_id"] == v.work_id


def test_badge_endpoint_bad_input(client: Any) -> None:  # noqa: F811
    assert client.get("/api/gallery/provenance?ids=1;drop").status_code in (400, 422)
    assert client.get("/api/gallery/provenance?ids=999").status_code == 404
