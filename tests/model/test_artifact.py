"""The model folder: safe weights + JSON, identical predictions after a round trip, refusal of mismatches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from signrec import landmarks
from signrec.landmarks import dataset, formats
from signrec.model.artifact import ArtifactError, Classifier
from signrec.model.features import FeatureSpec

LABELS = ["Accept", "Food", "Green"]


@pytest.fixture(scope="module")
def sequences(shared_data: Path) -> list[np.ndarray]:
    """Real recordings: four hands-only LSA64 sequences of different lengths."""
    samples = dataset.read_labels(shared_data / "lsa64_hands" / "labels.csv")[:200:50]
    return [formats.from_hands(np.load(s.path), s.path) for s in samples]


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    classifier = Classifier(LABELS, FeatureSpec(), "lstm", {"hidden": 16}, meta={"metrics": {"test": {"top1": 0.5}}})
    classifier.save(tmp_path / "model")
    return tmp_path / "model"


def test_round_trip_gives_identical_predictions(saved: Path, sequences: list[np.ndarray]) -> None:
    assert {p.name for p in saved.iterdir()} == {"model.safetensors", "model.json"}
    first = Classifier.load(saved)
    again_dir = saved.parent / "again"
    first.save(again_dir)
    second = Classifier.load(again_dir)
    p1, p2 = first.predict_proba(sequences), second.predict_proba(sequences)
    assert p1.shape == (len(sequences), 3)
    np.testing.assert_allclose(p1.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(p1, p2)
    meta = json.loads((saved / "model.json").read_text())
    assert meta["landmark_layout"] == landmarks.LAYOUT and meta["labels"] == LABELS
    assert meta["model"] == {"name": "lstm", "hparams": {"hidden": 16}}
    assert {"torch", "lightning", "mediapipe", "numpy", "signrec"} <= set(meta["versions"])
    assert second.meta["metrics"]["test"]["top1"] == 0.5


def test_network_is_landmarks_to_logits(saved: Path, sequences: list[np.ndarray]) -> None:
    classifier = Classifier.load(saved)
    one = sequences[0]
    logits = classifier.network()(torch.from_numpy(one)[None], torch.tensor([len(one)]))
    np.testing.assert_allclose(torch.softmax(logits, 1)[0].detach().numpy(), classifier.predict_proba([one])[0],
                               rtol=1e-4, atol=1e-6)
    # Batched with padding gives the same answer as one by one.
    batch = classifier.predict_proba(sequences)
    alone = np.concatenate([classifier.predict_proba([s]) for s in sequences])
    np.testing.assert_allclose(batch, alone, rtol=1e-4, atol=1e-5)


def _edit(folder: Path, change) -> None:
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update(landmark_layout="holistic-543-xyzv"), "landmark layout"),
    (lambda m: m["feature_spec"].update(version=99), "feature spec version"),
    (lambda m: m["feature_spec"].update(frames=16), "feature spec"),
    (lambda m: m["feature_spec"].update(colour=True), "feature spec"),
    (lambda m: m.update(labels=["Accept", "Green", "Food"]), "label map"),
    (lambda m: m.update(labels=["Accept", "Food"]), "label map"),
    (lambda m: m.update(format_version=7), "format version"),
    (lambda m: m["model"].update(hparams={"hidden": 32}), "weights do not fit"),
])
def test_mismatches_are_refused(saved: Path, change, message: str) -> None:
    _edit(saved, change)
    with pytest.raises(ArtifactError, match=message):
        Classifier.load(saved)


def test_foreign_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Classifier(["a", "b", "c", "d"], FeatureSpec(), "lstm", {"hidden": 16}).save(other)
    (saved / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(ArtifactError, match="label map"):
        Classifier.load(saved)
    # Same labels in the header but weights of another shape: refused by the shape check.
    weights = load_file(str(other / "model.safetensors"))
    save_file(weights, str(saved / "model.safetensors"), metadata={"format_version": "1"})
    with pytest.raises(ArtifactError, match="weights do not fit"):
        Classifier.load(saved)


def test_unusable_folders_and_inputs(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="nowhere: no such folder"):
        Classifier.load(tmp_path / "nowhere")
    with pytest.raises(ArtifactError, match=re.escape(f"did you mean {saved}?")):  # the run folder, not its model
        Classifier.load(saved.parent)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match=r"empty: not a signrec model folder \(no model\.json\)$"):
        Classifier.load(tmp_path / "empty")
    with pytest.raises(ArtifactError, match=r"no model\.onnx"):
        Classifier.load(saved, backend="onnxruntime")
    with pytest.raises(ArtifactError, match="unknown backend"):
        Classifier.load(saved, backend="tf")
    (saved / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ArtifactError, match="safetensors"):
        Classifier.load(saved)
    classifier = Classifier(LABELS, FeatureSpec(), "lstm", {"hidden": 16})
    with pytest.raises(landmarks.LandmarkError, match=r"shape \(frames, 543, 3\)"):
        classifier.predict_proba([np.zeros((10, 2, 21, 3), np.float32)])


def test_the_landmark_models_travel_with_the_model(saved: Path, tmp_path: Path) -> None:
    """A model is fed landmarks made like its training data: its settings win, and other datasets are refused."""
    from signrec.video.settings import ExtractSettings

    default = Classifier.load(saved)
    assert json.loads((saved / "model.json").read_text())["landmarks"] == {"face": True, "hand_model": "full"}
    default.check_landmarks({"face": True, "hand_model": "full"}, "data.csv")
    fast = Classifier(LABELS, FeatureSpec(), "lstm", {"hidden": 16},
                      meta={"landmarks": {"face": False, "hand_model": "lite"}})
    fast.save(tmp_path / "fast")
    fast = Classifier.load(tmp_path / "fast")
    assert fast.landmark_settings(ExtractSettings(max_side=320)) == ExtractSettings(max_side=320, face=False,
                                                                                  hand_model="lite")
    with pytest.raises(ArtifactError, match="data.csv: landmarks made with .*'face': True.*extract again"):
        fast.check_landmarks({"face": True, "hand_model": "full"}, "data.csv")
    for bad, message in (({"hand_model": "tiny"}, "hand_model"), ({"face": "no"}, "face must be")):
        _edit(tmp_path / "fast", lambda m, bad=bad: m.update(landmarks={"face": False, "hand_model": "lite", **bad}))
        with pytest.raises(ArtifactError, match=message):
            Classifier.load(tmp_path / "fast")


def test_no_face_model_runs_for_a_spec_that_does_not_read_the_face(tmp_path: Path) -> None:
    hands = Classifier(LABELS, FeatureSpec(subset="hands"), "lstm", {"hidden": 16},
                        meta={"landmarks": {"face": True, "hand_model": "full"}})
    assert hands.landmark_settings().face is False
    hands.check_landmarks({"face": True, "hand_model": "full"}, "data.csv")  # the face is there, and unread
    hands.check_landmarks({"face": False, "hand_model": "full"}, "data.csv")
    with pytest.raises(ArtifactError, match="lite"):
        hands.check_landmarks({"face": False, "hand_model": "lite"}, "data.csv")
    hands.save(tmp_path / "hands")
    meta = json.loads((tmp_path / "hands" / "model.json").read_text())
    assert meta["landmarks"] == {"face": False, "hand_model": "full"}
