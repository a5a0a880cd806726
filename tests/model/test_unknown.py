""""Not a sign": the calibrated threshold in model.json is what predict and continuous use, with reasons."""

from __future__ import annotations

import numpy as np
import pytest

from signrec import landmarks
from signrec.landmarks import formats
from signrec.landmarks.dataset import read_labels
from signrec.model import unknown
from signrec.model.artifact import Classifier
from signrec.model.features import FeatureSpec
from signrec.model.networks import default_hparams
from signrec.recognize.continuous import StreamRecognizer
from signrec.recognize.predict import predict_files

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_calibration_keeps_95_percent_of_the_validation_clips():
    proba = np.stack([np.linspace(0.3, 1.0, 100), np.linspace(0.7, 0.0, 100)], axis=1)
    entry = unknown.calibrate(proba, "signers x")
    assert entry["keeps"] == 0.95 and entry["calibrated_on"] == "100 validation clips (signers x)"
    assert np.mean(proba.max(1) >= entry["threshold"]) >= 0.95 > np.mean(proba.max(1) > entry["threshold"] + 0.01)
    assert unknown.threshold({"unknown": entry}) == entry["threshold"]
    assert unknown.threshold({}) == unknown.DEFAULT_THRESHOLD


def test_predict_says_why_an_answer_is_unknown(shared_data, tmp_path):
    model = Classifier(["Accept", "Buy"], FeatureSpec(), "lstm", default_hparams("lstm"))
    sample = read_labels(shared_data / "lsa64_hands" / "labels.csv")[0]
    sign, nobody = tmp_path / "sign.npy", tmp_path / "hands_down.npy"
    array = formats.from_hands(np.load(sample.path), sample.path)
    landmarks.save(sign, array)
    array[:, landmarks.PARTS["pose"]] = 0.5  # somebody there, no hand: not a sign
    array[:, landmarks.PARTS["left_hand"]] = array[:, landmarks.PARTS["right_hand"]] = np.nan
    landmarks.save(nobody, array)

    model.meta["unknown"] = {"threshold": 1.0}  # nothing is that sure
    low, none = predict_files(model, [sign, nobody])
    assert low["label"] == "unknown" and low["unknown_reason"].endswith("below the model's calibrated threshold 1.00")
    assert none["label"] == "unknown" and none["unknown_reason"] == "no hand in any frame"

    model.meta["unknown"] = {"threshold": 0.0}
    [sure] = predict_files(model, [sign])
    assert sure["label"] in model.labels and "unknown_reason" not in sure
    [forced] = predict_files(model, [sign], threshold=1.0)  # an explicit --threshold wins
    assert forced["unknown_reason"].endswith("below the threshold 1.00")
    assert StreamRecognizer(model, 15.0).settings.threshold == 0.0
    assert StreamRecognizer(model, 15.0, threshold=0.7).settings.threshold == 0.7


def test_the_server_answers_unknown_with_the_reason(shared_data):
    from fastapi.testclient import TestClient

    from signrec.serve.app import create_app
    from signrec.serve.settings import ServerSettings

    model = Classifier(["Accept", "Buy"], FeatureSpec(), "lstm", default_hparams("lstm"),
                       meta={"unknown": {"threshold": 1.0}})
    sample = read_labels(shared_data / "lsa64_hands" / "labels.csv")[0]
    sign = formats.from_hands(np.load(sample.path), sample.path)
    frames = [[[None if np.isnan(v) else float(v) for v in point] for point in frame] for frame in sign]
    with TestClient(create_app(model, ServerSettings())) as client:
        body = client.post("/v1/predict/landmarks", json={"frames": frames}).json()
    assert body["label"] == "unknown" and "calibrated threshold 1.00" in body["unknown_reason"]
    assert body["top"][0]["label"] in model.labels
