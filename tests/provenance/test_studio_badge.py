"""Browser check (chromium + playwright, like tests/studio/test_e2e.py): every gallery card
shows its provenance badge, and the item page a provenance row."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.studio.conftest import tiny_runs  # noqa: F401  (fixture)
from tests.studio.test_e2e import page, pytestmark, studio  # noqa: F401  (fixtures, marks)

__all__ = ["pytestmark"]


def test_gallery_cards_show_provenance(studio: dict[str, Any], page: Any) -> None:  # noqa: F811
    url = studio["url"]
    model = json.loads(urllib.request.urlopen(f"{url}/api/models", timeout=30).read())[0]["id"]
    req = urllib.request.Request(f"{url}/api/generate", method="POST",
                                 data=json.dumps({"model": model, "seeds": [1, 2]}).encode(),
                                 headers={"Content-Type": "application/json"})
    items = json.loads(urllib.request.urlopen(req, timeout=120).read())["items"]
    page.goto(f"{url}/gallery")
    page.wait_for_function("document.querySelectorAll('.card .prov-verified').length >= 2")
    assert page.locator(".card .prov").first.inner_text() == "✓ signed"
    page.goto(f"{url}/gallery/{items[0]['id']}")
    page.wait_for_selector("#meta dd.prov-verified")
    assert "c2pa (this installation)" in page.locator("#meta dd.prov-verified").inner_text()
