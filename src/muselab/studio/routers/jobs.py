"""``/api/jobs``: the persistent queue: submit, list, cancel, and live progress (SSE)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from muselab.store import jobs
from muselab.store.db import connect
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.registry import get_kind, list_kinds
from muselab.studio.schemas import JobIn, JobOut
from muselab.studio.settings import Settings

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


def submit_job(conn: sqlite3.Connection, settings: Settings, kind_name: str,
               params: dict[str, Any]) -> JobOut:
    """Validate ``params`` for the kind, run its submit-time checks, queue the job."""
    kind = get_kind(kind_name)
    parsed = kind.parse(params)
    key = kind.prepare(settings, parsed) if kind.prepare else None
    if key is not None:
        jobs.check_key_free(conn, key)
    return JobOut.of(jobs.submit(conn, kind.name, parsed.model_dump(), key=key))


@router.get("", response_model=list[JobOut])
def list_jobs(conn: DbDep, state: str | None = None, kind: str | None = None,
              limit: int = Query(50, ge=1, le=500)) -> list[JobOut]:
    """Newest first."""
    return [JobOut.of(j, log_lines=5) for j in jobs.list_jobs(conn, state, kind, limit)]


@router.get("/kinds")
def kinds() -> list[dict[str, Any]]:
    """The job kinds and the JSON schema of their parameters."""
    return [{"name": k.name, "description": k.description,
             "params": k.params.model_json_schema()} for k in list_kinds()]


@router.post("", response_model=JobOut, status_code=201)
def submit(body: JobIn, conn: DbDep, settings: SettingsDep) -> JobOut:
    """Queue a job of any registered kind; the worker process runs it."""
    return submit_job(conn, settings, body.kind, body.params)


@router.get("/{job_id}", response_model=JobOut)
def job(job_id: int, conn: DbDep, log_lines: int = Query(40, ge=0, le=200)) -> JobOut:
    return JobOut.of(jobs.get(conn, job_id), log_lines)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: int, conn: DbDep) -> JobOut:
    """Queued: cancelled now. Running: stops at its next progress report (training saves a
    checkpoint first, so it can be resumed)."""
    return JobOut.of(jobs.cancel(conn, job_id))


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(job_id: int, request: Request, conn: DbDep,
                 settings: SettingsDep) -> StreamingResponse:
    """Server-sent events: the job (as JSON) each time it changes; ends when it finishes."""
    jobs.get(conn, job_id)  # 404 before the stream starts
    return StreamingResponse(_stream(job_id, request, settings),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(job_id: int, request: Request, settings: Settings) -> AsyncIterator[str]:
    conn = connect(settings.db_path())
    last = None
    try:
        while True:
            job = jobs.get(conn, job_id)
            if job.updated != last:
                last = job.updated
                yield f"event: job\ndata: {JobOut.of(job, 20).model_dump_json()}\n\n"
            if not job.active:
                yield f"event: end\ndata: {json.dumps({'state': job.state})}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(settings.poll_s)
    finally:
        conn.close()
