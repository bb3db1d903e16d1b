"""The job queue: submit, claim, progress, cancel, unique keys, orphan recovery."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from muselab.store import jobs
from muselab.store.db import connect
from muselab.store.gallery import ConflictError, NotFoundError


@pytest.fixture
def db(tmp_path: Path) -> Path:
    jobs.init(connect(tmp_path / "q.sqlite3")).close()
    return tmp_path / "q.sqlite3"


@pytest.fixture
def conn(db: Path) -> sqlite3.Connection:
    return connect(db)


def test_lifecycle(conn: sqlite3.Connection) -> None:
    a = jobs.submit(conn, "sample", {"n": 2})
    b = jobs.submit(conn, "train", {"steps": 5})
    assert (a.state, a.progress) == ("queued", 0.0)
    got = jobs.claim_next(conn, pid=123)
    assert got is not None and got.id == a.id and got.state == "running" and got.attempts == 1
    assert jobs.report(conn, a.id, step=1, total=4, message="one", eta_s=3.0) is False
    assert jobs.get(conn, a.id).progress == pytest.approx(0.25)
    jobs.append_log(conn, a.id, "hello\nworld")
    jobs.save_state(conn, a.id, {"run_dir": "x"})
    done = jobs.finish(conn, a.id, "done", result={"items": [1]})
    assert (done.state, done.progress, done.result, done.job_state) == (
        "done", 1.0, {"items": [1]}, {"run_dir": "x"})
    assert done.log.splitlines() == ["hello", "world"]
    assert jobs.claim_next(conn, kinds=["sample"]) is None  # b is of another kind
    assert [j.id for j in jobs.list_jobs(conn)] == [b.id, a.id]


def test_log_keeps_a_tail(conn: sqlite3.Connection) -> None:
    j = jobs.submit(conn, "k", {})
    for i in range(jobs.LOG_TAIL_LINES + 50):
        jobs.append_log(conn, j.id, f"line {i}")
    lines = jobs.get(conn, j.id).log.splitlines()
    assert len(lines) == jobs.LOG_TAIL_LINES and lines[-1] == f"line {jobs.LOG_TAIL_LINES + 49}"


def test_cancel(conn: sqlite3.Connection) -> None:
    queued = jobs.submit(conn, "k", {})
    running = jobs.submit(conn, "k", {})
    jobs.claim_next(conn)  # takes `queued` (oldest)
    jobs.claim_next(conn)
    assert jobs.cancel(conn, queued.id).cancel_requested
    assert jobs.report(conn, queued.id, step=1, total=2) is True  # the worker is told to stop
    jobs.finish(conn, queued.id, "cancelled")
    with pytest.raises(ConflictError, match="already cancelled"):
        jobs.cancel(conn, queued.id)
    later = jobs.submit(conn, "k", {})
    assert jobs.cancel(conn, later.id).state == "cancelled"  # queued: at once
    assert jobs.get(conn, running.id).state == "running"
    with pytest.raises(NotFoundError, match="job 999"):
        jobs.cancel(conn, 999)


def test_key_is_unique_among_active_jobs(conn: sqlite3.Connection) -> None:
    a = jobs.submit(conn, "train", {}, key="run:00001-x")
    with pytest.raises(ConflictError, match=f"run 00001-x is already taken by job {a.id}"):
        jobs.submit(conn, "train", {}, key="run:00001-x")
    with pytest.raises(ConflictError):
        jobs.check_key_free(conn, "run:00001-x")
    jobs.claim_next(conn)
    jobs.finish(conn, a.id, "done")
    jobs.check_key_free(conn, "run:00001-x")
    assert jobs.submit(conn, "train", {}, key="run:00001-x").state == "queued"


def test_orphans_of_a_dead_worker_are_requeued(conn: sqlite3.Connection) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    a = jobs.submit(conn, "k", {})
    b = jobs.submit(conn, "k", {})
    c = jobs.submit(conn, "k", {})
    for pid in (dead_pid, dead_pid, 1):  # pid 1 is alive: its job is left alone
        jobs.claim_next(conn, pid=pid)
    jobs.cancel(conn, b.id)
    assert jobs.requeue_orphans(conn) == [a.id]
    assert [jobs.get(conn, i).state for i in (a.id, b.id, c.id)] == [
        "queued", "cancelled", "running"]
    again = jobs.claim_next(conn, pid=dead_pid)
    assert again is not None and again.id == a.id and again.attempts == 2


def test_orphan_gives_up_after_max_attempts(conn: sqlite3.Connection) -> None:
    a = jobs.submit(conn, "k", {})
    jobs.claim_next(conn, pid=2**22 + 12345)  # no such process
    assert jobs.requeue_orphans(conn, max_attempts=1) == []
    job = jobs.get(conn, a.id)
    assert job.state == "failed" and "giving up" in (job.error or "")


def test_two_connections_never_claim_the_same_job(db: Path) -> None:
    c1, c2 = connect(db), connect(db)
    for _ in range(6):
        jobs.submit(c1, "k", {})
    claimed = []
    for i in range(8):
        job = jobs.claim_next(c1 if i % 2 else c2)
        if job:
            claimed.append(job.id)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 6
