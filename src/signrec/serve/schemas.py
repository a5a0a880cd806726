"""The JSON the HTTP API speaks: request and response models, which also make the OpenAPI schema at /docs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from signrec import landmarks

LAYOUT_HELP = (
    f"Each frame is {landmarks.N_LANDMARKS} [x, y, z] points in the {landmarks.LAYOUT} layout of MediaPipe "
    "Holistic: pose 0-32, face 33-500, left hand 501-521, right hand 522-542, in normalised image "
    "coordinates; use null for a coordinate that was not detected (never 0)."
)


class LandmarkRequest(BaseModel):
    frames: list[Any] = Field(description="T frames. " + LAYOUT_HELP, examples=[[[[0.5, 0.4, -0.1]] * 543]])
    fps: float | None = Field(None, gt=0, description="frames per second of the sequence, if known")


class Guess(BaseModel):
    label: str
    p: float = Field(description="probability")


class Prediction(BaseModel):
    label: str = Field(description='the best sign, or "unknown" (then unknown_reason says why)')
    unknown_reason: str | None = None
    top: list[Guess]
    frames: int = Field(description="frames the classifier saw")
    fps: float | None = None
    presence: dict[str, float] = Field(description="fraction of frames in which each body part was detected")
    timing_ms: dict[str, float]
    warnings: list[str] = []


class ModelInfo(BaseModel):
    labels: list[str]
    spec: dict[str, Any]
    layout: str
    landmarks: dict[str, Any]
    """The MediaPipe models to make landmarks with (face on or off, full or lite hands), as for training."""
    metrics: dict[str, Any] | None
    meta: dict[str, Any]
    backend: str
    limits: dict[str, Any]
    version: str


class Error(BaseModel):
    detail: str = Field(description="what is wrong, in one sentence")
