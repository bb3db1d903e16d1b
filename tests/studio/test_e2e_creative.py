"""End to end in a real browser (Playwright + Debian's chromium, like ``test_e2e.py``):
the Stylize page (upload, live alpha preview, keep), Music (compose, play, piano roll) and
Poetry (write with an acrostic). ``MUSELAB_SCREENSHOTS=DIR`` saves the pages' screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.studio.test_e2e import _count, _shot, page, pytestmark, studio  # noqa: F401
from tests.style.conftest import photo, style_home  # noqa: F401


def _save(img: np.ndarray, path: Path) -> Path:
    Image.fromarray(img).save(path)
    return path


def test_stylize_upload_preview_keep(studio: dict[str, Any], page: Any,  # noqa: F811
                                     style_home: Path, tmp_path: Path) -> None:  # noqa: F811
    from muselab.style.arbitrary import model_dir

    # the studio's data home gets the fetched ONNX stylizer (it loads on the first preview)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSELAB_HOME", str(style_home))
        src = model_dir()
    shutil.copytree(src, tmp_path / "home" / "models" / src.name)
    content = _save(photo("chelsea", 320), tmp_path / "cat.png")
    style = _save(photo("immunohistochemistry", 256), tmp_path / "cells.png")
    page.goto(f"{studio['url']}/stylize")
    page.set_input_files("#content-file", str(content))
    page.wait_for_selector("#content-img:not([hidden])")
    page.set_input_files("#style-file", str(style))
    page.wait_for_function("document.querySelector('#preview').src.startsWith('blob:')")
    first = page.get_attribute("#preview", "src")
    page.locator("#alpha").fill("0.3")
    page.wait_for_function(f"document.querySelector('#preview').src !== '{first}'")
    page.select_option("#color", "luminance")
    page.wait_for_timeout(1500)
    page.click("#keep")
    page.wait_for_selector("#kept a[href^='/gallery/']")
    _count(page, "#content-pick .card", 3)
    kept = page.get_attribute("#preview", "src")
    page.select_option("#color", "none")
    page.locator("#alpha").fill("0.1")
    page.wait_for_function(f"document.querySelector('#preview').src !== '{kept}'")
    page.wait_for_timeout(1500)  # the last preview of the slider's value
    _shot(page, "stylize")
    page.click("#kept a")
    page.wait_for_selector("#lineage img")
    _count(page, "#lineage li", 3)  # the result and its content and style parents


def test_compose_and_play(studio: dict[str, Any], page: Any) -> None:  # noqa: F811
    page.goto(f"{studio['url']}/music")
    page.fill("#bars", "4")
    page.select_option("#key", "D minor")
    page.click("#compose")
    page.wait_for_selector("#piece img.roll")
    page.wait_for_function("document.querySelector('#player') && "
                           "document.querySelector('#player').readyState >= 1 && "
                           "document.querySelector('#player').duration > 1")
    assert "D minor" in page.text_content("#piece-info")
    _count(page, "#recent .card", 1)
    _shot(page, "music")
    page.click("#piece a:has-text('In the gallery')")
    page.wait_for_selector("#player")  # the gallery's detail view plays it too
    assert "music" in page.text_content("#title")


def test_write_poems(studio: dict[str, Any], page: Any) -> None:  # noqa: F811
    page.goto(f"{studio['url']}/poetry")
    page.wait_for_function("document.querySelector('#form').value === 'jueju5'")
    page.fill("#acrostic", "春夏秋冬")
    page.click("#write")
    _count(page, "#poems .poem-panel", 2)
    text = page.text_content("#poems .poem")
    lines = [ln for ln in text.replace("，", "\n").replace("。", "\n").splitlines() if ln]
    assert "".join(ln[0] for ln in lines) == "春夏秋冬"
    page.keyboard.press("n")
    page.wait_for_function("document.querySelectorAll('#recent .card').length >= 4")
    _shot(page, "poetry")
    page.click("#poems .poem-panel a")
    page.wait_for_selector("div#image.poem")  # the detail view shows the text
    assert page.text_content("#image").strip()
    page.goto(f"{studio['url']}/gallery")  # poems show their text in the grid
    _count(page, ".card .poem-card", 4)
