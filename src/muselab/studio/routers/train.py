"""``/api/train``: recipes, data (built-in sets and uploads), start/resume training jobs,
and each run's live loss curve and latest sample grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from muselab.store import jobs
from muselab.store.gallery import NotFoundError
from muselab.studio import uploads
from muselab.studio.deps import DbDep, SettingsDep
from muselab.studio.kinds.train import TrainParams, latest_step, run_dir_of
from muselab.studio.routers.jobs import submit_job
from muselab.studio.schemas import JobOut

router = APIRouter(prefix="/api/train", tags=["train"])


class RecipeOut(BaseModel):
    name: str
    description: str


class DatasetOut(BaseModel):
    id: str
    description: str
    fetched: bool


class UploadOut(BaseModel):
    id: str = Field(description="Use as data='upload:ID' when starting training.")
    images: int
    skipped: list[str]


class RunOut(BaseModel):
    id: str
    step: int
    steps: int
    model: str
    data: str
    job: int | None = Field(default=None, description="The active job training this run, if any.")


class ResumeIn(BaseModel):
    steps: int = Field(ge=1, le=10_000_000, description="New total number of steps.")


@router.get("/recipes", response_model=list[RecipeOut])
def recipes() -> list[RecipeOut]:
    """Trainable recipes (muselab models)."""
    from muselab.models.registry import list_models

    return [RecipeOut(name=s.name, description=s.description) for s in list_models()]


@router.get("/datasets", response_model=list[DatasetOut])
def datasets(settings: SettingsDep) -> list[DatasetOut]:
    """Built-in data sets and finished uploads."""
    from muselab.data.builtin import is_fetched, list_datasets

    out = [DatasetOut(id=d.name, description=d.description,
                      fetched=is_fetched(d)) for d in list_datasets()]
    root = settings.uploads_dir()
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                n = sum(1 for _ in p.iterdir())
                out.append(DatasetOut(id=f"upload:{p.name}", description=f"upload, {n} images",
                                      fetched=True))
    return out


@router.post("/uploads", response_model=UploadOut, status_code=201)
def upload(settings: SettingsDep,
           files: Annotated[list[UploadFile],
                            File(description="Images, or .zip archives of images.")]
           ) -> UploadOut:
    """Upload training images; everything is checked before the folder appears."""
    root = settings.uploads_dir()
    upload_id, tmp = uploads.new_upload_dir(root)
    limit = settings.max_upload_bytes
    try:
        kept, skipped = 0, list[str]()
        for f in files:
            name = Path(f.filename or "upload").name
            staged = tmp / f".staged-{kept}"
            uploads.copy_limited(f.file, staged, limit, name)
            if name.lower().endswith(".zip"):
                n, sk = uploads.extract_zip(staged, tmp, limit, settings.max_upload_files,
                                              start=kept)
                staged.unlink()
                kept, skipped = kept + n, skipped + sk
                continue
            uploads.check_image(staged, name)
            staged.rename(tmp / f"{kept:06d}{Path(name).suffix.lower() or '.png'}")
            kept += 1
        if kept == 0:
            raise uploads.UploadError("the upload holds no readable images "
                                      f"(skipped: {', '.join(skipped[:5]) or 'nothing'})", 415)
        uploads.commit(tmp, root, upload_id)
    except BaseException:
        uploads.discard(tmp)
        raise
    return UploadOut(id=upload_id, images=kept, skipped=skipped)


@router.post("", response_model=JobOut, status_code=201)
def start(body: TrainParams, conn: DbDep, settings: SettingsDep) -> JobOut:
    """Queue a training job (``resume`` set: continue that run)."""
    return submit_job(conn, settings, "train", body.model_dump())


@router.get("/runs", response_model=list[RunOut])
def runs(conn: DbDep, settings: SettingsDep) -> list[RunOut]:
    """Training runs, newest first, with their latest checkpoint step."""
    from muselab.train.rundir import list_runs

    active = {j.key: j.id for j in jobs.list_jobs(conn, kind="train", limit=500) if j.active}
    out = []
    for p in reversed(list_runs(settings.runs)):
        cfg = _config(p)
        out.append(RunOut(id=p.name, step=latest_step(p),
                          steps=int(cfg.get("train", {}).get("steps", 0)),
                          model=str(cfg.get("model", "")),
                          data=str(cfg.get("data", {}).get("source", "")),
                          job=active.get(f"run:{p.name}")))
    return out


@router.post("/runs/{run}/resume", response_model=JobOut, status_code=201)
def resume(run: str, body: ResumeIn, conn: DbDep, settings: SettingsDep) -> JobOut:
    """Continue a stopped run from its last checkpoint, to ``steps`` in total.
    409 if a job is already training it."""
    cfg = _config(run_dir_of(settings, run))
    params = TrainParams(model=cfg.get("model", "dcgan"), steps=body.steps, resume=run)
    return submit_job(conn, settings, "train", params.model_dump())


@router.get("/runs/{run}/log")
def run_log(run: str, settings: SettingsDep) -> dict[str, Any]:
    """Loss records (``log.jsonl``) and quality metrics (``metrics.jsonl``) of a run."""
    path = run_dir_of(settings, run)
    return {"run": path.name, "losses": _jsonl(path / "log.jsonl"),
            "metrics": _jsonl(path / "metrics.jsonl"), "step": latest_step(path)}


@router.get("/runs/{run}/samples/latest", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}}})
def latest_samples(run: str, settings: SettingsDep) -> FileResponse:
    """The newest sample grid of a run."""
    path = run_dir_of(settings, run)
    grids = sorted((path / "samples").glob("step-*.png"))
    if not grids:
        raise NotFoundError(f"run {run} has no sample grid yet; they appear every "
                            "train.sample_every steps")
    return FileResponse(grids[-1], media_type="image/png", headers={"Cache-Control": "no-store"})


def _config(run_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((run_dir / "config.json").read_text())
        return data
    except (OSError, json.JSONDecodeError):
        return {}


def _jsonl(path: Path, limit: int = 2000) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines()[-limit:]:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    return rows
