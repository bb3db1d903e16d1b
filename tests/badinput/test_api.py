"""Bad input on the studio's REST API: each case is refused with a 4xx and a JSON message,
nothing is left behind, and hostile text (SQL, HTML) is stored and returned verbatim."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.badinput.conftest import BROKEN_IMAGES, png

HOSTILE = ["'); DROP TABLE items; --", "\" OR 1=1 --", "<script>window.__pwned=1</script>",
           "<img src=x onerror=\"window.__pwned=1\">", "a\u0000b", "\u202eevil", "*", "\""]


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16  # a symbolic link entry
            zf.writestr(info, target)
    return buf.getvalue()


def _upload(name: str, data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"files": [("files", (name, data, mime))]}


Request = tuple[str, str, Callable[[], dict[str, Any]]]
#: (case, (method, path, request keywords), status, what the message must say)
API_CASES: list[tuple[str, Request, int, str]] = [
    *[(f"upload-{name}", ("POST", "/api/train/uploads", lambda m=make, n=name: _upload(n, m())),
       413 if "huge" in name or "bomb" in name else 415, name)
      for name, make in BROKEN_IMAGES.items()],
    *[(f"style-upload-{name}", ("POST", "/api/style/uploads", lambda m=make, n=name: {
        "files": {"file": (n, m(), "image/png")}}), 413 if "huge" in name or "bomb" in name
       else 415, name) for name, make in BROKEN_IMAGES.items()],
    ("style-upload-1x1", ("POST", "/api/style/uploads", lambda: {
        "files": {"file": ("one.png", png(np.zeros((1, 1, 3), np.uint8)), "image/png")}}),
     415, "1x1 is too small"),
    ("zip-slip", ("POST", "/api/train/uploads", lambda: _upload(
        "x.zip", _zip({"ok.png": png(), "../../evil.png": png()}), "application/zip")),
     400, "path traversal"),
    ("zip-absolute", ("POST", "/api/train/uploads", lambda: _upload(
        "x.zip", _zip({"/etc/evil.png": png()}), "application/zip")), 400, "path traversal"),
    ("zip-symlink", ("POST", "/api/train/uploads", lambda: _upload(
        "x.zip", _zip({"ok.png": png()}, {"link.png": "/etc/passwd"}), "application/zip")),
     400, "symbolic link"),
    ("zip-not-a-zip", ("POST", "/api/train/uploads", lambda: _upload(
        "x.zip", b"PK\x03\x04 broken", "application/zip")), 415, "not a valid zip"),
    ("zip-bomb", ("POST", "/api/train/uploads", lambda: _upload(
        "b.zip", _zip({"z.png": bytes(3 * 2**20)}), "application/zip")), 413, "expands"),
    ("upload-oversized", ("POST", "/api/train/uploads", lambda: _upload(
        "big.png", png() + bytes(2 * 2**20))), 413, "upload limit"),
    ("upload-declared-oversized", ("POST", "/api/jobs", lambda: {
        "content": b"{}", "headers": {"content-length": str(50 * 2**20),
                                      "content-type": "application/json"}}), 413, "limit"),
    ("upload-as-json", ("POST", "/api/train/uploads", lambda: {"json": {"files": "x"}}),
     422, "files"),
    ("job-as-text-plain", ("POST", "/api/jobs", lambda: {
        "content": b'{"kind": "sample", "params": {}}',
        "headers": {"content-type": "text/plain"}}), 422, "request"),
    ("job-malformed-json", ("POST", "/api/jobs", lambda: {
        "content": b'{"kind": ', "headers": {"content-type": "application/json"}}),
     422, "JSON"),
    ("job-bad-utf8", ("POST", "/api/jobs", lambda: {
        "content": b'{"kind": "\xff\xfe"}', "headers": {"content-type": "application/json"}}),
     400, "parsing the body"),
    ("job-unknown-kind", ("POST", "/api/jobs", lambda: {"json": {"kind": "rm -rf"}}),
     400, "unknown job kind 'rm -rf'"),
    ("generate-unknown-model", ("POST", "/api/generate", lambda: {
        "json": {"model": "../../etc/passwd", "n": 1}}), 404, "../../etc/passwd"),
    ("train-unknown-recipe", ("POST", "/api/train", lambda: {
        "json": {"model": "no-such-recipe", "data": "digits"}}), 400, "no-such-recipe"),
    ("train-bad-value", ("POST", "/api/train", lambda: {
        "json": {"model": "vae", "data": "digits", "resolution": 33}}), 400, "33"),
    ("train-upload-traversal", ("POST", "/api/train", lambda: {
        "json": {"model": "vae", "data": "upload:../../runs"}}), 404, "no such upload"),
    ("run-traversal", ("GET", "/api/train/runs/..%2F..%2Fetc/log", lambda: {}), 404, ""),
    ("item-out-of-range", ("GET", f"/api/gallery/{2**70}", lambda: {}), 404, "does not exist"),
    ("tags-too-many", ("PUT", "/api/gallery/1/tags", lambda: {"json": {"tags": ["t"] * 65}}),
     422, "tags"),
]


@pytest.mark.parametrize(("case", "request_", "status", "expect"), API_CASES,
                         ids=[c[0] for c in API_CASES])
def test_api_refuses_clearly(case: str, request_: Request, status: int, expect: str,
                             client: Any, settings: Any) -> None:
    method, path, kwargs = request_
    res = client.request(method, path, **kwargs())
    assert res.status_code == status, res.text
    message = res.json()["error"]
    assert message and expect in message, message
    uploads = settings.uploads_dir()
    assert not uploads.exists() or not list(uploads.iterdir()), "a refused upload was kept"


def _item(settings: Any, prompt: str, tags: list[str], file: str = "x.png") -> int:
    from muselab.store import gallery
    from muselab.store.db import connect

    media = settings.media_dir()
    media.mkdir(parents=True, exist_ok=True)
    (media / "x.png").write_bytes(png())
    conn = connect(settings.db_path())
    try:
        return gallery.add_item(conn, gallery.NewItem(kind="image", file=file, prompt=prompt,
                                                      model="m", tags=tags))
    finally:
        conn.close()


def test_sql_and_html_in_prompts_and_tags_are_kept_verbatim(client: Any, settings: Any) -> None:
    item = _item(settings, " ".join(HOSTILE), [])
    res = client.put(f"/api/gallery/{item}/tags", json={"tags": HOSTILE})
    assert res.status_code == 200, res.text
    got = client.get(f"/api/gallery/{item}").json()
    assert got["prompt"] == " ".join(HOSTILE)
    stored = {t.strip().lower()[:64] for t in HOSTILE if t.strip()}
    assert set(got["tags"]) == stored  # verbatim (tags are lower-cased by design)
    for text in HOSTILE:  # searching for it is a query, never SQL or FTS syntax
        res = client.get("/api/gallery", params={"q": text})
        assert res.status_code == 200, (text, res.text)
    found = client.get("/api/gallery", params={"q": "drop table"}).json()
    assert [i["id"] for i in found["items"]] == [item]
    assert client.get("/api/gallery", params={"tag": HOSTILE[2].lower()}).json()["total"] == 1
    assert client.get("/api/gallery").json()["total"] == 1  # the table is still there


def test_refused_upload_leaves_nothing(client: Any, settings: Any) -> None:
    """A good image next to a bad one: the whole upload is refused, no folder appears."""
    files = [("files", ("good.png", png(), "image/png")),
             ("files", ("trunc.jpg", BROKEN_IMAGES["truncated.jpg"](), "image/jpeg"))]
    res = client.post("/api/train/uploads", files=files)
    assert res.status_code == 415 and "trunc.jpg" in res.json()["error"]
    root = settings.uploads_dir()
    assert not root.exists() or list(root.iterdir()) == []
