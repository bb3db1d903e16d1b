"""``/api/models``: the models the studio can sample (training runs and shipped models)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from muselab.studio.deps import EngineDep, SettingsDep
from muselab.studio.engine import find_model, list_models

router = APIRouter(prefix="/api/models", tags=["models"])


class ModelOut(BaseModel):
    id: str
    origin: str
    recipe: str
    resolution: int
    step: int
    classes: list[str]
    created: str
    text: bool = Field(default=False, description="Draws from a text prompt (text-to-image).")


class DirectionsOut(BaseModel):
    model: str
    sigma: list[float]
    explained: list[float]


@router.get("", response_model=list[ModelOut])
def models(settings: SettingsDep) -> list[dict[str, Any]]:
    """Every model with weights: training runs (newest first), then shipped models."""
    return [m.public() for m in list_models(settings)]


@router.get("/{model_id}", response_model=ModelOut)
def model(model_id: str, settings: SettingsDep) -> dict[str, Any]:
    return find_model(settings, model_id).public()


@router.get("/{model_id}/directions", response_model=DirectionsOut)
def directions(model_id: str, engine: EngineDep,
               k: int = Query(8, ge=1, le=32)) -> DirectionsOut:
    """Principal latent directions (GANSpace): the spread and explained variance of each."""
    d = engine.directions(model_id, k)
    return DirectionsOut(model=model_id, sigma=d.sigma[:k].tolist(),
                         explained=d.explained[:k].tolist())
