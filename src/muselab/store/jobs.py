"""A persistent job queue in SQLite (WAL): the web process submits, a worker process claims.

States: ``queued -> running -> done | failed | cancelled``. A job's ``key`` (e.g. the run
directory of a training job) is unique among active jobs, so the same run cannot train
twice at once. Jobs left ``running`` by a worker that died are put back in the queue by
:func:`requeue_orphans`; their ``state`` JSON (e.g. the run directory) lets them resume.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from muselab.store.gallery import ConflictError, NotFoundError, migrate, transaction

State = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[State, ...] = ("queued", "running")
FINAL: tuple[State, ...] = ("done", "failed", "cancelled")
LOG_TAIL_LINES = 200

MIGRATIONS = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        key TEXT,
        state TEXT NOT NULL DEFAULT 'queued',
        progress REAL NOT NULL DEFAULT 0,
        step INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        eta_s REAL,
        message TEXT NOT NULL DEFAULT '',
        error TEXT,
        result TEXT,
        job_state TEXT NOT NULL DEFAULT '{}',
        log TEXT NOT NULL DEFAULT '',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_pid INTEGER,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        updated REAL NOT NULL
    );
    CREATE INDEX jobs_state ON jobs(state, id);
    CREATE UNIQUE INDEX jobs_active_key ON jobs(key) WHERE key IS NOT NULL
        AND state IN ('queued', 'running')
    """,
)


@dataclass
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    key: str | None
    state: State
    progress: float  # 0..1
    step: int
    total: int
    eta_s: float | None
    message: str
    error: str | None
    result: dict[str, Any] | None
    job_state: dict[str, Any]  # what a restarted job needs to resume (e.g. its run dir)
    log: str
    cancel_requested: bool
    attempts: int
    worker_pid: int | None
    created: float
    started: float | None
    finished: float | None
    updated: float

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def public(self, log_lines: int = 40) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["log"] = "\n".join(self.log.splitlines()[-log_lines:])
        return d


def init(conn: sqlite3.Connection) -> sqlite3.Connection:
    migrate(conn, "jobs", MIGRATIONS)
    return conn


def _job(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], kind=row["kind"], params=json.loads(row["params"]), key=row["key"],
               state=row["state"], progress=row["progress"], step=row["step"],
               total=row["total"], eta_s=row["eta_s"], message=row["message"],
               error=row["error"], result=json.loads(row["result"]) if row["result"] else None,
               job_state=json.loads(row["job_state"]), log=row["log"],
               cancel_requested=bool(row["cancel_requested"]), attempts=row["attempts"],
               worker_pid=row["worker_pid"], created=row["created"], started=row["started"],
               finished=row["finished"], updated=row["updated"])


def submit(conn: sqlite3.Connection, kind: str, params: dict[str, Any],
           key: str | None = None, job_state: dict[str, Any] | None = None) -> Job:
    """Queue a job; :class:`ConflictError` if an active job already holds ``key``."""
    now = time.time()
    try:
        cur = conn.execute(
            "INSERT INTO jobs (kind, params, key, job_state, created, updated) "
            "VALUES (?,?,?,?,?,?)",
            (kind, json.dumps(params, sort_keys=True), key, json.dumps(job_state or {}), now,
             now))
    except sqlite3.IntegrityError:
        other = conn.execute("SELECT id, state FROM jobs WHERE key=? AND state IN "
                             "('queued','running')", (key,)).fetchone()
        what = f"job {other['id']} ({other['state']})" if other else "another job"
        raise ConflictError(_busy(key, other["id"] if other else None, what)) from None
    return get(conn, int(cur.lastrowid or 0))


def get(conn: sqlite3.Connection, job_id: int) -> Job:
    row = None if not 0 <= job_id < 2**63 else conn.execute("SELECT * FROM jobs WHERE id=?",
                                                             (job_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"job {job_id} does not exist; GET /api/jobs lists the jobs")
    return _job(row)


def list_jobs(conn: sqlite3.Connection, state: str | None = None, kind: str | None = None,
              limit: int = 50) -> list[Job]:
    where, args = [], []
    if state:
        where.append("state=?")
        args.append(state)
    if kind:
        where.append("kind=?")
        args.append(kind)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(f"SELECT * FROM jobs {clause} ORDER BY id DESC LIMIT ?",
                        [*args, limit]).fetchall()
    return [_job(r) for r in rows]


def claim_next(conn: sqlite3.Connection, kinds: list[str] | None = None,
               pid: int | None = None) -> Job | None:
    """Atomically take the oldest queued job (of ``kinds``) and mark it running."""
    with transaction(conn):
        row = conn.execute("SELECT id, kind FROM jobs WHERE state='queued' ORDER BY id").fetchall()
        chosen = next((r["id"] for r in row if kinds is None or r["kind"] in kinds), None)
        if chosen is None:
            return None
        now = time.time()
        conn.execute("UPDATE jobs SET state='running', started=coalesce(started, ?), updated=?, "
                     "attempts=attempts+1, worker_pid=?, error=NULL WHERE id=?",
                     (now, now, pid if pid is not None else os.getpid(), chosen))
    return get(conn, chosen)


def report(conn: sqlite3.Connection, job_id: int, *, step: int, total: int,
           message: str = "", eta_s: float | None = None) -> bool:
    """Record progress; returns whether cancellation was requested (the job should stop)."""
    progress = min(1.0, step / total) if total > 0 else 0.0
    conn.execute("UPDATE jobs SET step=?, total=?, progress=?, eta_s=?, message=?, updated=? "
                 "WHERE id=?", (step, total, progress, eta_s, message[:500], time.time(), job_id))
    row = conn.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
    return bool(row and row[0])


def append_log(conn: sqlite3.Connection, job_id: int, text: str) -> None:
    """Add lines to the job's log, keeping the last :data:`LOG_TAIL_LINES`."""
    with transaction(conn):
        row = conn.execute("SELECT log FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            return
        lines = (row[0].splitlines() + text.rstrip("\n").splitlines())[-LOG_TAIL_LINES:]
        conn.execute("UPDATE jobs SET log=?, updated=? WHERE id=?",
                     ("\n".join(lines), time.time(), job_id))


def save_state(conn: sqlite3.Connection, job_id: int, job_state: dict[str, Any],
               key: str | None = None) -> None:
    """Remember what a restarted attempt needs (merged into the job's ``job_state``);
    ``key`` claims a resource (e.g. the run directory it just created) for this job."""
    with transaction(conn):
        current = get(conn, job_id)
        conn.execute("UPDATE jobs SET job_state=?, key=coalesce(?, key), updated=? WHERE id=?",
                     (json.dumps({**current.job_state, **job_state}), key, time.time(), job_id))


def finish(conn: sqlite3.Connection, job_id: int, state: State,
           result: dict[str, Any] | None = None, error: str | None = None) -> Job:
    """Move a running job to a final state."""
    if state not in FINAL:
        raise ValueError(state)
    now = time.time()
    progress_sql = ", progress=1" if state == "done" else ""
    conn.execute(f"UPDATE jobs SET state=?, result=?, error=?, finished=?, updated=?, eta_s=NULL"
                 f"{progress_sql} WHERE id=?",
                 (state, json.dumps(result) if result is not None else None, error, now, now,
                  job_id))
    return get(conn, job_id)


def cancel(conn: sqlite3.Connection, job_id: int) -> Job:
    """Cancel: a queued job at once, a running one at its next progress report."""
    with transaction(conn):
        job = get(conn, job_id)
        if job.state not in ACTIVE:
            raise ConflictError(f"job {job_id} is already {job.state}; only queued or running "
                                "jobs can be cancelled")
        now = time.time()
        if job.state == "queued":
            conn.execute("UPDATE jobs SET state='cancelled', finished=?, updated=?, "
                         "cancel_requested=1 WHERE id=?", (now, now, job_id))
        else:
            conn.execute("UPDATE jobs SET cancel_requested=1, updated=?, "
                         "message='cancelling...' WHERE id=?", (now, job_id))
    return get(conn, job_id)


def requeue_orphans(conn: sqlite3.Connection, max_attempts: int = 5) -> list[int]:
    """Jobs marked running by a worker that no longer exists go back to the queue (or fail
    after ``max_attempts``). Call when a worker starts."""
    ids = []
    with transaction(conn):
        rows = conn.execute("SELECT id, worker_pid, attempts, cancel_requested FROM jobs "
                            "WHERE state='running'").fetchall()
        now = time.time()
        for r in rows:
            if r["worker_pid"] is not None and _alive(r["worker_pid"]):
                continue
            if r["cancel_requested"]:
                conn.execute("UPDATE jobs SET state='cancelled', finished=?, updated=? "
                             "WHERE id=?", (now, now, r["id"]))
            elif r["attempts"] >= max_attempts:
                conn.execute("UPDATE jobs SET state='failed', error=?, finished=?, updated=? "
                             "WHERE id=?", (f"worker died {r['attempts']} times running this "
                                            "job; giving up", now, now, r["id"]))
            else:
                conn.execute("UPDATE jobs SET state='queued', worker_pid=NULL, updated=?, "
                             "message='requeued after a restart' WHERE id=?", (now, r["id"]))
                ids.append(int(r["id"]))
    return ids


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is starting up: whatever it "runs" is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_key_free(conn: sqlite3.Connection, key: str) -> None:
    """:class:`ConflictError` if an active job holds ``key``."""
    row = conn.execute("SELECT id, state FROM jobs WHERE key=? AND state IN ('queued','running')",
                       (key,)).fetchone()
    if row:
        raise ConflictError(_busy(key, row["id"], f"job {row['id']} ({row['state']})"))


def _busy(key: str | None, job_id: int | None, what: str) -> str:
    thing = (key or "").replace("run:", "run ", 1)
    return (f"{thing} is already taken by {what}: one job at a time; wait for it to finish "
            f"or cancel it (POST /api/jobs/{job_id if job_id is not None else 'ID'}/cancel)")

