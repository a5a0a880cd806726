"""Recognise the sign in each of some files: videos (extracted on the fly) or landmark .npy files.

    signrec predict RUN/model clip.mp4 other.npy [--top-k 3] [--threshold 0.4] [--json]
    signrec predict RUN/model recording.mp4 --continuous      # a sequence of signs -> words with times

A prediction whose probability is below the threshold is reported as "unknown": an isolated-sign
classifier always picks one of its labels, and a low score is the only hint that it saw none of them.
With --continuous every sign found in the recording is listed with its times, "unknown" below the threshold.
The default threshold is `signrec live`'s, so that both find the same words in the same recording.
A file that can not be read is reported and the others are still predicted (exit status 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError
from signrec.landmarks import require_usable
from signrec.recognize.continuous import StreamSettings, transcribe

UNKNOWN = "unknown"


def _load(path: Path, classifier: Any, with_fps: bool = False) -> tuple[np.ndarray, float | None]:
    """Landmarks of a .npy file, or of a video extracted with the landmark models `classifier` was trained on;
    LandmarkError if nothing was detected in any frame."""
    from signrec.video.holistic import extract_video, load_or_extract

    settings = classifier.landmark_settings()
    if with_fps and path.suffix.lower() != ".npy":
        array, info = extract_video(path, settings)
        return require_usable(array, path), info.get("fps")
    return require_usable(load_or_extract(path, settings), path), None


def predict_files(classifier: Any, paths: Sequence[str | os.PathLike], top_k: int = 3,
                  threshold: float = StreamSettings.threshold, progress: bool = False) -> list[dict[str, Any]]:
    """One result per path, in order: {"path", "label", "confidence", "top": [{"label", "p"}]} or {"path", "error"}."""
    from tqdm import tqdm

    results: list[dict[str, Any]] = []
    arrays, slots = [], []
    for path in tqdm([Path(p) for p in paths], desc="reading", unit="file", disable=None if progress else True):
        try:
            arrays.append(_load(path, classifier)[0])
            slots.append(len(results))
            results.append({"path": str(path)})
        except SignrecError as exc:
            results.append({"path": str(path), "error": str(exc)})
    if arrays:
        proba = classifier.predict_proba(arrays)
        for slot, p in zip(slots, proba, strict=True):
            results[slot].update(_ranked(classifier.labels, p, top_k, threshold))
    return results


def _ranked(labels: Sequence[str], p: np.ndarray, top_k: int, threshold: float) -> dict[str, Any]:
    order = np.argsort(-p)[: max(1, top_k)]
    best = float(p[order[0]])
    return {"label": labels[order[0]] if best >= threshold else UNKNOWN, "confidence": best,
            "top": [{"label": labels[i], "p": float(p[i])} for i in order]}


def transcribe_files(classifier: Any, paths: Sequence[str | os.PathLike], fps: float | None = None,
                     threshold: float = StreamSettings.threshold) -> list[dict[str, Any]]:
    """Continuous signing: per file {"path", "fps", "words": [{"label", "start", "end", "confidence"}]}."""
    results: list[dict[str, Any]] = []
    for path in map(Path, paths):
        try:
            array, video_fps = _load(path, classifier, with_fps=True)
            rate = fps or video_fps
            if not rate:
                raise SignrecError(f"{path}: frame rate unknown; pass --fps")
            words = transcribe(classifier, array, rate, threshold=0.0)  # every cut; --threshold decides below
            for w in words:
                if w["confidence"] < threshold:
                    w["label"] = UNKNOWN
            results.append({"path": str(path), "fps": rate, "words": words})
        except SignrecError as exc:
            results.append({"path": str(path), "error": str(exc)})
    return results


