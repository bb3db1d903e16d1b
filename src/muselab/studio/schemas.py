"""Typed request and response bodies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from muselab.store.gallery import Item
from muselab.store.jobs import Job

#: An image or job id (SQLite integer range).
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ErrorOut(BaseModel):
    error: str = Field(description="What went wrong and what to do about it.")
    detail: Any = None


class ItemOut(BaseModel):
    id: int
    kind: str
    url: str
    download_url: str
    mime: str
    prompt: str
    params: dict[str, Any]
    seed: int | None
    model: str
    weights_hash: str
    source: str
    job_id: int | None
    created: float
    rating: float | None
    n_ratings: int
    value: float | None = Field(default=None, description="Predicted value (0-1), if scored.")
    tags: list[str]
    parents: list[int]
    has_latent: bool
    deleted: bool

    @classmethod
    def of(cls, item: Item) -> ItemOut:
        d = item.public()
        return cls(url=f"/api/gallery/{item.id}/file",
                   download_url=f"/api/gallery/{item.id}/file?download=1", **d)


class ItemsOut(BaseModel):
    items: list[ItemOut]
    total: int = 0


class ItemDetailOut(ItemOut):
    lineage: dict[str, Any]
    children: list[int]


class JobOut(BaseModel):
    id: int
    kind: str
    params: dict[str, Any]
    key: str | None
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    step: int
    total: int
    eta_s: float | None
    message: str
    error: str | None
    result: dict[str, Any] | None
    log: str = Field(description="The last lines of the job's log.")
    cancel_requested: bool
    attempts: int
    created: float
    started: float | None
    finished: float | None
    updated: float

    @classmethod
    def of(cls, job: Job, log_lines: int = 40) -> JobOut:
        d = job.public(log_lines)
        return cls(**{k: v for k, v in d.items() if k in cls.model_fields})


class JobIn(BaseModel):
    kind: str = Field(description="A job kind (GET /api/jobs/kinds).")
    params: dict[str, Any] = Field(default_factory=dict)


class GenerateIn(BaseModel):
    model: str = Field(min_length=1, description="Model id (GET /api/models).")
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        default=None, max_length=256, description="Explicit seeds; else n seeds from `seed`.")
    n: int = Field(default=8, ge=1, le=256)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    prompt: str = Field(default="", max_length=2000)


class VariationsIn(BaseModel):
    item: Id
    n: int = Field(default=8, ge=1, le=256)
    strength: float = Field(default=0.3, ge=0.0, le=1.0,
                            description="0 = the same image, 1 = unrelated images.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class BreedIn(BaseModel):
    parents: list[Id] = Field(min_length=1, max_length=64)
    n: int = Field(default=9, ge=1, le=256)
    strength: float = Field(default=0.25, ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    crossover: Literal["uniform", "slerp"] = "uniform"


class ExploreIn(BaseModel):
    model: str = Field(min_length=1)
    coeffs: list[float] = Field(default_factory=list, max_length=32,
                                description="Offsets along principal directions, in sigmas.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    item: Id | None = Field(default=None, description="Start from this image's latent instead.")


class InterpolateIn(BaseModel):
    items: list[Id] = Field(min_length=2, max_length=32)
    frames: int = Field(default=12, ge=2, le=120, description="Frames between consecutive images.")
    fps: float = Field(default=12.0, gt=0, le=60)


class RatingIn(BaseModel):
    item: Id
    value: float = Field(ge=1, le=5, description="1 to 5 stars (low/medium/high = 1/3/5).")


class RatingOut(BaseModel):
    item: int
    rating: float
    n_ratings: int


class TagsIn(BaseModel):
    tags: list[str] = Field(max_length=64)
