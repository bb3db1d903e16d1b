"""``kill -9`` of the studio (web server and worker) with one job running and two queued:
after a restart every job is still there and runs to the end; the running one resumes from
its last checkpoint."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from muselab.studio.settings import Settings
from tests.faults.conftest import in_child, kill_config
from tests.tiny import TINY_NETS

TRAIN: dict[str, Any] = {
    "model": "vae", "data": "digits", "resolution": 32, "batch_size": 8, "limit": 32,
    "recipe": {"net": TINY_NETS["vae"]},
    "train": {"metric_every": 0, "sample_every": 0, "checkpoint_every": 2, "keep_last": 2,
              "log_every": 1},
}
LONG = 200  # long enough that it cannot finish between the poll and the kill


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(settings: Settings, errors: Path) -> tuple[int, int]:
    """The studio as ``muselab studio`` runs it: a web server and a worker process."""

    def serve() -> None:
        import uvicorn

        from muselab.studio.app import create_app

        uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.port,
                    log_level="error")

    def work() -> None:
        from muselab.studio.worker import Worker

        Worker(settings).serve()

    return in_child(serve, errors), in_child(work, errors)


def _kill9(*pids: int) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _until(what: str, fn: Callable[[], Any], timeout: float = 90) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = fn()
        except httpx.TransportError:  # the server is still starting
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _jobs(http: httpx.Client) -> dict[int, dict[str, Any]]:
    return {j["id"]: j for j in http.get("/api/jobs").json()}


def test_restart_loses_no_job(runs: Path, tmp_path: Path) -> None:
    from muselab.train.run import start_run

    start_run(kill_config(steps=1), runs)  # lazy imports and the digits cache, once, here:
    # the forked processes inherit them instead of each paying ~10 s on this busy machine
    settings = Settings(db=tmp_path / "studio.sqlite3", media=tmp_path / "media",
                        runs=tmp_path / "runs", models=tmp_path / "models", poll_s=0.05,
                        port=_free_port())
    errors = tmp_path / "errors.txt"
    http = httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=30)
    pids = _start(settings, errors)
    try:
        _until("the server", lambda: http.get("/api/jobs").status_code == 200)
        long = http.post("/api/train", json={**TRAIN, "steps": LONG}).json()["id"]
        short = [http.post("/api/train", json={**TRAIN, "steps": 1, "seed": s}).json()["id"]
                 for s in (1, 2)]
        _until("a checkpoint of the running job",
               lambda: _jobs(http)[long]["step"] >= 3)
        _kill9(*pids)
        pids = ()
        before = {j["id"]: j for j in _read_db(settings)}
        assert before[long]["state"] == "running" and before[long]["step"] < LONG
        assert [before[i]["state"] for i in short] == ["queued"] * 2
        pids = _start(settings, errors)  # the restart
        done = _until("every job to finish", lambda: (lambda js: js if all(
            js[i]["state"] in ("done", "failed") for i in [long, *short]) else None)(
            _jobs(http)))
    finally:
        _kill9(*pids)
    assert not errors.exists(), errors.read_text()
    assert {i: done[i]["state"] for i in [long, *short]} == dict.fromkeys([long, *short], "done")
    assert done[long]["attempts"] == 2 and done[long]["result"]["step"] == LONG
    assert "requeued" in done[long]["log"] and "resum" in done[long]["log"]
    assert [done[i]["result"]["step"] for i in short] == [1, 1]


def _read_db(settings: Settings) -> list[dict[str, Any]]:
    """The jobs as the killed processes left them (straight from SQLite)."""
    from muselab.store import jobs
    from muselab.store.db import connect

    conn = connect(settings.db_path())
    try:
        return [{"id": j.id, "state": j.state, "step": j.step}
                for j in jobs.list_jobs(conn, None, None, 100)]
    finally:
        conn.close()
