"""The job worker: a process apart from the web server that runs queued jobs one at a time.

``python -m muselab.studio.worker`` (``muselab studio`` starts it). On start it puts jobs
that a dead worker left ``running`` back in the queue, so they run again (a training job
resumes from its last checkpoint). SIGTERM/SIGINT stop the current job at its next
progress report and leave it queued for the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import traceback
from typing import Any

from muselab.errors import MuselabError
from muselab.store import gallery, jobs
from muselab.store.db import connect
from muselab.studio.context import JobContext
from muselab.studio.registry import get_kind
from muselab.studio.settings import Settings

log = logging.getLogger("muselab.studio.worker")


class _JobLog(logging.Handler):
    """Copies ``muselab`` log records (warnings from the trainer, ...) into the job's log."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(logging.INFO)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ctx.log(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # never let logging break the job
            pass


class Worker:
    """Claims and runs jobs from the queue in ``settings.db_path()``."""

    def __init__(self, settings: Settings, shutdown: threading.Event | None = None) -> None:
        self.settings = settings
        self.shutdown = shutdown or threading.Event()
        self.conn = connect(settings.db_path())
        gallery.init(self.conn)
        jobs.init(self.conn)

    def recover(self) -> list[int]:
        """Requeue jobs orphaned by a dead worker (call once at start)."""
        ids = jobs.requeue_orphans(self.conn)
        for job_id in ids:
            jobs.append_log(self.conn, job_id, "worker restarted: job requeued")
        return ids

    def run_once(self) -> jobs.Job | None:
        """Run the next queued job to its end; the finished job, or None if none was queued."""
        job = jobs.claim_next(self.conn)
        if job is None:
            return None
        ctx = JobContext(self.conn, job, self.settings, self.shutdown)
        handler = _JobLog(ctx)
        logging.getLogger("muselab").addHandler(handler)
        try:
            result, state, error = self._execute(ctx)
        finally:
            logging.getLogger("muselab").removeHandler(handler)
        if state == "queued":  # shutting down mid-job: leave it for the next worker
            self.conn.execute("UPDATE jobs SET state='queued', worker_pid=NULL, "
                              "message='paused by shutdown' WHERE id=?", (job.id,))
            return jobs.get(self.conn, job.id)
        return jobs.finish(self.conn, job.id, state, result=result, error=error)

    def _execute(self, ctx: JobContext) -> tuple[dict[str, Any] | None, Any, str | None]:
        job = ctx.job
        try:
            kind = get_kind(job.kind)
            result = kind.run(ctx, kind.parse(job.params))
        except MuselabError as exc:
            ctx.log(f"error: {exc}")
            return None, "failed", str(exc)
        except Exception as exc:  # a bug, not user input: keep the traceback in the log
            ctx.log(traceback.format_exc(limit=8))
            return None, "failed", f"internal error: {type(exc).__name__}: {exc} (see the log)"
        if ctx.cancelled:
            ctx.log("cancelled")
            return result, "cancelled", None
        if self.shutdown.is_set():
            return result, "queued", None
        return result, "done", None

    def serve(self) -> None:
        """Run jobs until shutdown."""
        self.recover()
        log.info("worker %d polling %s", os.getpid(), self.settings.db_path())
        while not self.shutdown.is_set():
            if self.run_once() is None:
                self.shutdown.wait(self.settings.poll_s)


def main() -> None:
    """Entry point of the worker process (settings from ``MUSELAB_*``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    worker = Worker(Settings.load())

    def stop(signum: int, frame: Any) -> None:
        worker.shutdown.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.serve()


if __name__ == "__main__":
    main()
