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
    name: str = Field(description='the model in use: "base", or a personal model (GET /v1/models)')
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


class ModelEntry(BaseModel):
    name: str = Field(description='"base" (the model the server was started with) or a personal model\'s name')
    base: bool
    in_use: bool
    labels: list[str]
    signer: str | None = Field(description="whose personal model it is (None: the base model)")
    new_signs: list[str] = Field(description="signs the base model did not know, added by enrollment")
    card: dict[str, Any] = Field(description="the model card (`signrec card`): accuracy measured on new people, "
                                             "after enrollment, the unknown threshold")
    expected_accuracy: str = Field(description="the top-1 a person can expect, in words, from the card")


class ModelList(BaseModel):
    in_use: str
    models: list[ModelEntry]


class Enrollment(BaseModel):
    signer: str | None
    signs: dict[str, int] = Field(description="clips used per sign")
    new_signs: list[str]
    skipped_files: list[str] = Field(description="why each clip left out was left out (no hand found, ...)")
    seconds: float


class Enrolled(BaseModel):
    model: ModelEntry = Field(description="the new personal model, with its card")
    in_use: str = Field(description="the model in use after this request")
    enrollment: Enrollment


class Error(BaseModel):
    detail: str = Field(description="what is wrong, in one sentence")
