"""What a running job sees: progress with ETA, a log tail, resumable state, cancellation."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from muselab.store import jobs
from muselab.studio.settings import Settings


class JobContext:
    """Handed to a job kind's function by the worker."""

    def __init__(self, conn: sqlite3.Connection, job: jobs.Job, settings: Settings,
                 shutdown: threading.Event | None = None, min_interval: float = 0.3) -> None:
        self.conn, self.job, self.settings = conn, job, settings
        self.shutdown = shutdown or threading.Event()
        self.min_interval = min_interval
        self._last = 0.0
        self._stop = False
        self._t0 = time.monotonic()
        self._step0: int | None = None

    @property
    def job_id(self) -> int:
        return self.job.id

    @property
    def state(self) -> dict[str, Any]:
        """State saved by an earlier attempt of this job (empty on the first)."""
        return self.job.job_state

    def progress(self, step: int, total: int, message: str = "", force: bool = False) -> bool:
        """Report ``step`` of ``total``; True when the job should stop now (cancel/shutdown).

        Writes at most every ``min_interval`` seconds (unless ``force``); the ETA is the
        remaining steps at this attempt's mean rate.
        """
        if self._step0 is None:
            self._step0, self._t0 = step, time.monotonic()
        now = time.monotonic()
        if force or now - self._last >= self.min_interval or step >= total:
            done = step - self._step0
            eta = (total - step) * (now - self._t0) / done if done > 0 else None
            self._stop = jobs.report(self.conn, self.job.id, step=step, total=total,
                                     message=message, eta_s=eta)
            self._last = now
        return self.should_stop()

    def should_stop(self) -> bool:
        return self._stop or self.shutdown.is_set()

    @property
    def cancelled(self) -> bool:
        """Stopping because the user cancelled (not because the worker shuts down)."""
        return self._stop

    def log(self, text: str) -> None:
        jobs.append_log(self.conn, self.job.id, text)

    def save_state(self, key: str | None = None, **state: Any) -> None:
        jobs.save_state(self.conn, self.job.id, state, key=key)
        self.job.job_state.update(state)
