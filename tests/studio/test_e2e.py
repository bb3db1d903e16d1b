"""End to end in a real browser: Playwright drives Debian's headless chromium against
`muselab studio` (web server + worker process) started as a user would.

Covers the newcomer path (create -> rate -> variations -> breed -> gallery -> rate, within
two minutes of the server being up) and a training job with live progress.
Skipped when playwright or chromium is missing (`pip install playwright`,
`apt-get install chromium`). ``MUSELAB_SCREENSHOTS=DIR`` saves a screenshot of each page
(``MUSELAB_SCREENSHOT_RUNS=DIR`` serves those runs instead of the tiny test model).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.studio.conftest import TINY_TRAIN

CHROMIUM = os.environ.get("MUSELAB_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
SHOTS = os.environ.get("MUSELAB_SCREENSHOTS")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def studio(tmp_path: Path, tiny_runs: Path) -> Iterator[dict[str, Any]]:
    """`muselab studio` on a free port, with its own data home; yields url and start time."""
    runs = tmp_path / "runs"
    shutil.copytree(os.environ.get("MUSELAB_SCREENSHOT_RUNS") or tiny_runs, runs)
    port = _free_port()
    models = os.environ.get("MUSELAB_SCREENSHOT_MODELS") or str(tmp_path / "models")
    env = {**os.environ, "MUSELAB_HOME": str(tmp_path / "home"), "MUSELAB_RUNS": str(runs),
           "MUSELAB_MODELS": models, "MUSELAB_POLL_S": "0.1",
           "PYTHONPATH": str(Path.cwd() / "src")}
    env.pop("MUSELAB_DB", None)
    env.pop("MUSELAB_MEDIA", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from muselab.cli import main; main()", "studio",
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    url = f"http://localhost:{port}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - t0 > 90:
                    raise AssertionError(f"studio did not start:\n{proc.stdout.read()}"
                                         ) from None  # type: ignore[union-attr]
                time.sleep(0.3)
        yield {"url": url, "up": time.monotonic(), "runs": runs}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert f"muselab studio: {url}/" in output


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        pg = browser.new_page(viewport={"width": 1360, "height": 900})
        pg.set_default_timeout(90_000)  # a loaded CI machine can be slow
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert errors == [], errors


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(400)
        page.screenshot(path=str(Path(SHOTS) / f"studio-{name}.png"), full_page=False)


def _count(page: Any, selector: str, n: int, timeout: float = 90_000) -> None:
    page.wait_for_function(f"document.querySelectorAll({json.dumps(selector)}).length >= {n}",
                           timeout=timeout)


def test_newcomer_creates_rates_breeds_and_browses(studio: dict[str, Any], page: Any) -> None:
    url = studio["url"]
    page.goto(f"{url}/create")
    page.wait_for_function("document.querySelector('#model').value !== ''")
    page.click("#generate")
    _count(page, "#batch .card img", 12)
    page.click("#batch .card:nth-child(3)")
    assert page.locator("#picked img").count() == 1
    page.keyboard.press("4")
    page.wait_for_selector("#toast div:has-text('4 ★')")
    page.click("#variations")
    _count(page, "#vars .card", 8)
    _shot(page, "create")

    page.click("#to-breed")
    page.wait_for_url("**/breed?parents=*")
    _count(page, "#population .card.selected", 1)
    page.keyboard.press("b")
    page.wait_for_function("document.querySelector('#gen-title').textContent === 'Generation 2'")
    _count(page, "#population .card", 9)
    page.keyboard.press("1")
    page.keyboard.press("2")
    assert page.locator("#population .card.selected").count() == 2
    page.keyboard.press("b")
    page.wait_for_function("document.querySelector('#gen-title').textContent === 'Generation 3'")
    page.keyboard.press("u")
    page.wait_for_function("document.querySelector('#gen-title').textContent === 'Generation 2'")
    assert page.locator("#population .card.selected").count() == 2  # undo restores parents
    assert page.locator("#history .gen").count() == 3
    _shot(page, "breed")

    page.goto(f"{url}/gallery")
    page.wait_for_function("/\\d+ items/.test(document.querySelector('#count').textContent)")
    total = int(page.inner_text("#count").split()[0])
    assert total == 12 + 8 + 9 + 9  # batch, variations, two bred generations
    page.select_option("#f-source", "breed")
    page.wait_for_function("document.querySelector('#count').textContent === '18 items'")
    _shot(page, "gallery")
    page.click("#items .card:first-child")
    page.wait_for_selector("#lineage ul ul li")  # a child of bred parents shows its ancestry
    page.click("#more")
    _count(page, "#more-out .card", 8)
    _shot(page, "item")
    page.click("#delete")
    page.wait_for_url(f"{url}/gallery")

    page.goto(f"{url}/rate")
    page.wait_for_function("document.querySelector('#image').src.includes('/api/gallery/')")
    _shot(page, "rate")
    first = page.get_attribute("#image", "src")
    page.keyboard.press("5")
    page.wait_for_function(f"document.querySelector('#image').src !== {json.dumps(url + first)}"
                           " && document.querySelector('#rated').textContent === '1'")
    assert time.monotonic() - studio["up"] < 120  # the newcomer bar: all within two minutes


def test_explore_sliders_and_walk(studio: dict[str, Any], page: Any) -> None:
    page.goto(f"{studio['url']}/explore")
    _count(page, "#sliders input[type=range]", 8, timeout=180_000)
    page.wait_for_function("document.querySelector('#preview').src.startsWith('blob:')")
    before = page.get_attribute("#preview", "src")
    page.locator("#sliders input").first.fill("2.5")
    page.wait_for_function(f"document.querySelector('#preview').src !== {json.dumps(before)}")
    page.click("#walk")
    page.wait_for_selector("#walk-out img[src*='/api/gallery/']")
    _shot(page, "explore")
    page.click("#keep")
    page.wait_for_selector("#toast div:has-text('kept as')")


def test_training_job_with_live_progress(studio: dict[str, Any], page: Any) -> None:
    url = studio["url"]
    page.goto(f"{url}/train")
    page.wait_for_function("document.querySelector('#recipe').options.length > 0")
    page.select_option("#recipe", "hinge-gan")
    page.select_option("#data", "digits")
    page.fill("#steps", "150")
    page.fill("#batch", "16")
    extra = {k: TINY_TRAIN[k] for k in ("limit", "recipe", "train")}
    page.fill("#advanced", json.dumps(extra))
    page.click("#start")
    # live: the bar moves while the worker trains
    page.wait_for_function(
        "document.querySelector('#live-state').textContent === 'running' && "
        "Number(document.querySelector('#live-step').textContent) > 0 && "
        "Number(document.querySelector('#live-step').textContent) < 150", timeout=90_000)
    page.wait_for_function("document.querySelector('#samples').naturalWidth > 0")
    if SHOTS:  # a later moment shows the loss curves
        page.wait_for_function("Number(document.querySelector('#live-step').textContent) >= 90")
        page.wait_for_timeout(1600)
    _shot(page, "train")
    page.wait_for_function("document.querySelector('#live-state').textContent === 'done'",
                           timeout=120_000)
    assert page.inner_text("#live-step") == "150"
    assert "finished at step 150" in page.inner_text("#log")
    page.goto(f"{url}/jobs")
    page.wait_for_selector("#jobs .state.done")
    _shot(page, "jobs")
    page.goto(f"{url}/create")
    page.wait_for_function("[...document.querySelectorAll('#model option')]"
                           ".some((o) => o.textContent.includes('step 150'))")
