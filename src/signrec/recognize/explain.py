"""Why no sign, or the wrong sign: `signrec predict --explain`.

An isolated-sign classifier only says which of its labels scores highest. When that answer is "unknown" or
wrong, the person needs to know what to change: the input (no person, hands not found, person cut off, too
short: the recording checks of video/quality.py, with the same thresholds) or the sign (low confidence, or
unlike every training example: not a vocabulary sign). The nearest training examples by the network's
embedding, drawn as skeletons beside the input, show what the model compares the input with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError, landmarks
from signrec.landmarks.dataset import Sample
from signrec.landmarks.store import load_all
from signrec.video import quality
from signrec.video.show import skeleton_strip

UPPER_BODY = slice(0, 23)  # pose points above the hips: the part of a person a sign needs in the picture
MAX_CUT_OFF = 0.2  # share of frames with upper-body points outside the picture
MIN_SECONDS = 0.5
NEIGHBOURS = 3
NOVELTY_QUANTILE = 0.95  # farther from every training example than 95 % of them are from their nearest other one


@dataclass
class Reference:
    """The training examples in the model's embedding: what the nearest-example search compares with."""

    samples: list[Sample]
    arrays: list[np.ndarray]
    vectors: np.ndarray  # (N, D), unit length
    typical: float  # NOVELTY_QUANTILE of the training examples' distances to their nearest other example

    @classmethod
    def of(cls, classifier: Any) -> Reference | None:
        """The training data recorded in the model folder, if it is still on disk; None otherwise."""
        from signrec.video.batch import open_dataset

        training = classifier.meta.get("training") or {}
        data = training.get("data")
        if not data or not Path(data).exists():
            return None
        store = open_dataset(data, classifier.landmark_settings(), progress=False)
        labels = set(classifier.labels)
        signers = set(((training.get("split") or {}).get("signers") or {}).get("train") or [])  # not val/test
        samples, arrays, _bad = load_all(store, [s for s in store.samples if s.label in labels
                                                 and (not signers or s.signer in signers)])
        if len(samples) < 2:
            return None
        vectors = _unit(classifier.embed(arrays))
        distances = 1.0 - vectors @ vectors.T
        np.fill_diagonal(distances, np.inf)
        typical = float(np.quantile(distances.min(axis=1), NOVELTY_QUANTILE))
        return cls(samples, arrays, vectors, typical)

    def nearest(self, vector: np.ndarray, k: int = NEIGHBOURS) -> list[tuple[int, float]]:
        distances = 1.0 - self.vectors @ _unit(vector[None])[0]
        order = np.argsort(distances)[:k]
        return [(int(i), float(distances[i])) for i in order]


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def input_reasons(array: np.ndarray, fps: float | None) -> list[dict[str, str]]:
    """What is wrong with the input itself, in words; empty if nothing is."""
    found = ~np.isnan(array[..., 0])
    person = float(found[:, quality.NOSE].mean()) if len(array) else 0.0
    if person < quality.MIN_PERSON:
        return [{"reason": "no_person", "text": f"no person was found in {100 * (1 - person):.0f} % of the frames "
                                                 "(no hands either): nothing to recognise"}]
    reasons = []
    left, right = landmarks.PARTS["left_hand"].start, landmarks.PARTS["right_hand"].start
    hands = float((found[:, left] | found[:, right]).mean())
    if hands < quality.MIN_HANDS:
        reasons.append({"reason": "no_hands", "text": f"hands not found in {100 * (1 - hands):.0f} % of the frames"})
    body = array[:, UPPER_BODY, :2]
    with np.errstate(invalid="ignore"):
        outside = ((body < 0) | (body > 1)).any(axis=2).any(axis=1)
    if outside.mean() > MAX_CUT_OFF:
        reasons.append({"reason": "cut_off", "text": f"person cut off: body points outside the picture in "
                                                     f"{100 * outside.mean():.0f} % of the frames"})
    if fps:
        seconds = len(array) / fps
        if seconds < MIN_SECONDS or (hands >= quality.MIN_HANDS and hands * seconds < quality.MIN_SIGNING_S):
            reasons.append({"reason": "too_short", "text": f"clip too short: {seconds:.1f} s, hands in view for "
                                                           f"{hands * seconds:.1f} s"})
    return reasons


def explain(classifier: Any, array: np.ndarray, result: dict[str, Any], fps: float | None, threshold: float,
            reference: Reference | None, picture: str | os.PathLike | None = None) -> dict[str, Any]:
    """The reasons for one prediction `result` (from predict_files) of `array`, and its nearest training
    examples; with `picture`, the input and those examples drawn side by side into that image file."""
    reasons = input_reasons(array, fps)
    if reasons and reasons[0]["reason"] == "no_person":
        return {"reasons": reasons, "nearest": []}
    confidence = result.get("confidence", 0.0)
    if confidence < threshold:
        reasons.append({"reason": "low_confidence", "text": f"low confidence: {confidence:.0%} for "
                                                            f"{result['top'][0]['label']}, below the model's "
                                                            f"threshold of {threshold:.0%}"})
    nearest: list[dict[str, Any]] = []
    if reference is not None:
        vector = classifier.embed([array])[0]
        near = reference.nearest(vector)
        nearest = [{"label": reference.samples[i].label, "path": str(reference.samples[i].path),
                    "signer": reference.samples[i].signer, "distance": round(d, 4)} for i, d in near]
        if near and near[0][1] > reference.typical:
            reasons.append({"reason": "not_in_vocabulary", "text": "not like any training example: probably not "
                                                                   f"one of the model's {len(classifier.labels)} "
                                                                   "signs"})
        if picture is not None:
            skeleton_strip([array] + [reference.arrays[i] for i, _d in near],
                           ["input: " + str(result.get("label"))]
                           + [f"{reference.samples[i].label} ({d:.2f})" for i, d in near], picture)
    elif picture is not None:
        skeleton_strip([array], ["input: " + str(result.get("label"))], picture)
    out: dict[str, Any] = {"reasons": reasons, "nearest": nearest}
    if picture is not None:
        out["picture"] = str(picture)
    if reference is None:
        out["note"] = "the training data recorded in the model is not on disk: no nearest examples"
    return out


def explain_files(classifier: Any, paths: list[Path], top_k: int, threshold: float,
                  out_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """predict_files' results with an "explain" entry each; a clip with no person is explained, not an error."""
    from signrec.recognize.predict import UNKNOWN, ranked
    from signrec.video.holistic import extract_video

    reference = Reference.of(classifier)
    results = []
    for path in paths:
        try:
            if path.suffix.lower() == ".npy":
                array, fps = landmarks.load(path), None
            else:
                array, info = extract_video(path, classifier.landmark_settings())
                fps = info.get("fps")
        except SignrecError as exc:
            results.append({"path": str(path), "error": str(exc)})
            continue
        result: dict[str, Any] = {"path": str(path)}
        if not np.isnan(array).all():
            result.update(ranked(classifier.labels, classifier.predict_proba([array])[0], top_k))
            if result["confidence"] < threshold:
                result["label"] = UNKNOWN
        else:
            result.update({"label": "unknown", "confidence": 0.0, "top": []})
        picture = Path(out_dir) / f"{path.stem}.explain.png" if out_dir is not None else None
        result["explain"] = explain(classifier, array, result, fps, threshold, reference, picture)
        if any(r["reason"] == "no_person" for r in result["explain"]["reasons"]):
            result["label"] = "unknown"  # no answer from (almost) nothing: the model's guess is not a sign
        results.append(result)
    return results
