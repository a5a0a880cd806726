""""Not a sign" and "not one of mine": when an answer is `unknown`, and why.

A classifier always picks one of its signs. Two things make its answer `unknown` instead:
- no hand in any frame: nobody signed (hands down, nobody in the picture), whatever the classifier says;
- the best class's probability is below the model's threshold, calibrated when it was trained: the level that
  keeps `KEEP` of the validation clips (signers the weights never trained on; never the test signers). It is
  stored in model.json (`unknown`). A personal model (train/enroll.py) is calibrated on the person's own clips,
  each scored by a personal model fitted without that take. A model without one (trained before) uses DEFAULT_THRESHOLD.
benchmarks/unknown.py measures how well this tells the model's signs from other signs, another sign language
and stretches without signing (BENCHMARKS.md, "Not a sign").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from signrec import landmarks

UNKNOWN = "unknown"
KEEP = 0.95
"""Share of the validation clips the calibrated threshold keeps."""
DEFAULT_THRESHOLD = 0.4
"""For models without a calibrated threshold: `signrec live`'s level before calibration existed."""
_HANDS = np.r_[landmarks.PARTS["left_hand"], landmarks.PARTS["right_hand"]]


def calibrate(val_proba: np.ndarray, where: str, clips: str = "validation clips") -> dict[str, Any]:
    """The model.json `unknown` entry from the probabilities (N, C) of clips the weights never trained on;
    `where` says which."""
    best = np.asarray(val_proba).max(axis=1)
    return {"score": "max_probability", "threshold": round(float(np.quantile(best, 1 - KEEP)), 4), "keeps": KEEP,
            "calibrated_on": f"{len(best)} {clips} ({where})"}


def threshold(meta: dict[str, Any]) -> float:
    """The threshold of a model's model.json, or DEFAULT_THRESHOLD."""
    return float((meta.get("unknown") or {}).get("threshold", DEFAULT_THRESHOLD))


def no_hands(array: np.ndarray) -> bool:
    return bool(np.isnan(array[:, _HANDS, 0]).all())


def reason(confidence: float, limit: float, calibrated: bool) -> str | None:
    """Why an answer with this confidence is unknown, or None if it is not."""
    if confidence >= limit:
        return None
    how = "the model's calibrated threshold" if calibrated else "the threshold"
    return f"confidence {confidence:.2f} below {how} {limit:.2f}"
