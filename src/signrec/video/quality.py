"""Quality checks of a recorded take, each with a plain-words hint.

The same checks and thresholds as the web page's recording wizard (serve/web/page/quality.js), so that the page
and `signrec record` agree on what a bad take is. Landmark checks read a take in signrec's layout; picture checks
read brightness and sharpness of a 160x90 grey copy of each frame, the size the page measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from signrec.landmarks import PARTS

NOSE, LEFT_WRIST, RIGHT_WRIST = 0, 15, 16
SMALL = (160, 90)  # the page's measuring canvas: sharpness depends on the picture's size
MIN_PERSON = 0.5  # share of frames with a person
MAX_HANDS_OUT = 0.2  # share of frames with a wrist left, right or above the picture
MIN_HANDS = 0.1  # a take is mostly rest around a short sign (MLR511: hands in 20-40 % of a clip)
MIN_SIGNING_S = 0.4
MIN_FACE = 0.5
MIN_BRIGHTNESS = 50.0  # mean grey level, 0-255
MIN_SHARPNESS = 1.5  # mean |Laplacian| of the small grey copy


@dataclass(frozen=True)
class Hint:
    """One failed check: its name (stable, for scripts) and what to do about it, in words."""

    check: str
    hint: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "hint": self.hint}


def picture_stats(frame_bgr: np.ndarray) -> tuple[float, float]:
    """Mean brightness (0-255) and sharpness (mean |Laplacian|) of a frame, measured as the page does."""
    small = cv2.resize(frame_bgr, SMALL, interpolation=cv2.INTER_AREA)
    b, g, r = (small[..., i].astype(np.float32) for i in range(3))
    grey = 0.299 * r + 0.587 * g + 0.114 * b
    centre = grey[1:-1, 1:-1]
    edges = np.abs(4 * centre - grey[1:-1, :-2] - grey[1:-1, 2:] - grey[:-2, 1:-1] - grey[2:, 1:-1])
    return float(grey.mean()), float(edges.mean())


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0


def check_take(frames: np.ndarray, pictures: list[tuple[float, float]], seconds: float,
               uses_face: bool = True) -> list[Hint]:
    """The hints for a take of landmarks (T, 543, 3) with its picture stats; empty for a good take."""
    found = ~np.isnan(frames[..., 0]) if len(frames) else np.zeros((0, 543), bool)
    person = _share(found[:, NOSE])
    if person < MIN_PERSON:  # every other check would say the same again
        return [Hint("no_person", f"No one was found in {100 * (1 - person):.0f} % of the take: stand in front of "
                                  "the camera with your head, shoulders and hands in view.")]
    hints = []
    left, right = PARTS["left_hand"].start, PARTS["right_hand"].start
    hands = _share(found[:, left] | found[:, right])
    wrists = frames[:, [LEFT_WRIST, RIGHT_WRIST], :2]
    with np.errstate(invalid="ignore"):  # NaN wrists are not outside; below the picture is a hand at rest
        out = ((wrists[..., 0] < 0) | (wrists[..., 0] > 1) | (wrists[..., 1] < 0)).any(axis=1)
    outside = _share(out)
    if outside > MAX_HANDS_OUT:
        hints.append(Hint("hands_out", f"A hand left the picture in {100 * outside:.0f} % of the frames: step back, "
                                       "or turn the camera so that your raised hands stay in view."))
    if hands < MIN_HANDS:
        hints.append(Hint("hands_missing", f"Your hands were not found in {100 * (1 - hands):.0f} % of the frames: "
                                           "sign in front of your body, in good light, hands in view."))
    elif hands * seconds < MIN_SIGNING_S:
        hints.append(Hint("too_short", f"The sign was very short or very fast ({hands * seconds:.1f} s with hands "
                                       "in view): sign at your usual pace, and start after the countdown."))
    face = _share(found[:, PARTS["face"].start])
    if uses_face and face < MIN_FACE:
        hints.append(Hint("face_hidden", f"Your face was not found in {100 * (1 - face):.0f} % of the take, and this "
                                         "model reads the face: face the camera and keep your face uncovered."))
    if pictures:
        brightness, sharpness = (float(np.mean(v)) for v in zip(*pictures, strict=True))
        if brightness < MIN_BRIGHTNESS:
            hints.append(Hint("too_dark", "The picture is too dark: turn on a light in front of you, not behind you."))
        if sharpness < MIN_SHARPNESS:
            hints.append(Hint("blurred", "The picture is blurred: clean the lens, hold the camera still, or add "
                                         "light."))
    return hints
