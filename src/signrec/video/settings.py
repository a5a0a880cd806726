"""How videos become landmarks: a frozen, validated dataclass that imports neither cv2 nor MediaPipe, so that a
model folder can record it and a server that only classifies landmarks can read it."""

from __future__ import annotations

from dataclasses import dataclass

from signrec import SignrecError
from signrec.landmarks.layout import LANDMARK_MODELS

HAND_MODELS = {"lite": 0, "full": 1}
"""Hand landmark models in the wheel, by their index in MediaPipe's model switch."""
MODEL_FIELDS = tuple(LANDMARK_MODELS)
"""Settings that change the landmarks themselves: a model records them and is fed landmarks made the same way."""


@dataclass(frozen=True)
class ExtractSettings:
    """How videos become landmarks. Saved in every manifest; a resumed run must use the same."""

    max_side: int = 640
    """Frames whose longer side exceeds this are downscaled before inference (0 = never)."""
    frame_step: int = 1
    """Keep every n-th frame (2 halves the work and the frame rate)."""
    model_complexity: int = 1
    """MediaPipe pose model size. Only 1 ships inside the mediapipe wheel, so only 1 works offline."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    face: bool = True
    """Run the face model. Off, the 468 face points are NaN and a frame takes about 4 ms less (of ~45 ms on
    one core); for models trained without the face, such as the fast live set-up in the README."""
    hand_model: str = "full"
    """MediaPipe's hand landmark model, both in the wheel: "full", or "lite" (about 7 ms a frame less on one
    core; points move by about 0.5 % of the image). A model must be fed the landmarks it was trained on."""

    def __post_init__(self) -> None:
        if not isinstance(self.face, bool):
            raise SignrecError(f"face must be true or false, got {self.face!r}")
        if self.hand_model not in HAND_MODELS:
            raise SignrecError(f"hand_model must be one of {', '.join(HAND_MODELS)}, got {self.hand_model!r}")
        if self.frame_step < 1:
            raise SignrecError(f"frame_step must be >= 1, got {self.frame_step}")
        if self.max_side < 0:
            raise SignrecError(f"max_side must be >= 0, got {self.max_side}")
        if self.model_complexity != 1:
            raise SignrecError("model_complexity must be 1: the other pose models are not in the mediapipe "
                               "wheel and would be downloaded at run time")
