"""Enrollment: a personal model folder from a base model and a person's real clips (LSA64 hands, no MediaPipe)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks import formats
from signrec.landmarks.dataset import read_labels
from signrec.model.artifact import ArtifactError, Classifier
from signrec.model.features import FeatureSpec
from signrec.model.networks import default_hparams
from signrec.train.enroll import EnrollError, EnrollSettings, enroll

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = EnrollSettings(views=2, steps=20)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """An untrained base model: enrollment's mechanics do not depend on how good the encoder is."""
    Classifier(["Accept", "Buy", "Call"], FeatureSpec(), "lstm", default_hparams("lstm")).save(tmp_path / "base")
    return tmp_path / "base"


@pytest.fixture
def person(shared_data: Path, tmp_path: Path) -> Path:
    """`<label>/<clip>.npy`: two real clips of signer 002 for two base signs and for one new sign."""
    samples = [s for s in read_labels(shared_data / "lsa64_hands" / "labels.csv") if s.signer == "002"]
    out = tmp_path / "person"
    for label in ("Accept", "Buy", "Yogurt"):
        for k, s in enumerate([s for s in samples if s.label == label][:2]):
            landmarks.save(out / label / f"{k}.npy", formats.from_hands(np.load(s.path), s.path))
    return out


def test_enrolls_base_and_new_signs_into_an_ordinary_model_folder(base, person, tmp_path):
    before = _digest(base)
    record = enroll(base, person, tmp_path / "mine", signer="ana", settings=FAST)
    assert _digest(base) == before  # the base folder is only read
    personal = Classifier.load(tmp_path / "mine")
    assert personal.labels == ["Accept", "Buy", "Call", "Yogurt"]  # base signs kept, the new one appended
    meta = personal.meta["enrollment"]
    assert meta == json.loads(json.dumps(record))
    assert meta["signer"] == "ana" and meta["signs"] == {"Accept": 2, "Buy": 2, "Yogurt": 2}
    assert meta["new_signs"] == ["Yogurt"]
    assert meta["base"]["weights_sha256"] == Classifier.load(base).weights_digest()
    assert 0 <= meta["check"]["top1_on_enrollment_clips"] <= 1
    clips = [landmarks.load(p) for p in sorted(person.glob("*/*.npy"))]
    assert personal.predict_proba(clips).shape == (6, 4)

    only = enroll(base, person, tmp_path / "only", only_enrolled=True, settings=FAST)
    assert Classifier.load(tmp_path / "only").labels == ["Accept", "Buy", "Yogurt"] and only["only_enrolled"]


def test_the_unknown_threshold_is_calibrated_on_takes_the_personal_head_did_not_see(base, person, tmp_path):
    enroll(base, person, tmp_path / "mine", signer="ana", settings=FAST)
    entry = Classifier.load(tmp_path / "mine").meta["unknown"]
    assert entry["calibrated_on"].startswith("6 enrollment clips (ana's") and 0 < entry["threshold"] < 1
    for label in ("Accept", "Buy", "Yogurt"):  # one clip of a sign: nothing to hold out, so no calibration
        (person / label / "1.npy").unlink()
    record = enroll(base, person, tmp_path / "one", settings=FAST)
    assert "unknown" not in Classifier.load(tmp_path / "one").meta and record["unknown"].startswith("not calibrated")


def test_the_personal_part_is_in_the_exported_onnx_graph(base, person, tmp_path):
    from signrec.model.export import export_onnx

    enroll(base, person, tmp_path / "mine", settings=FAST)
    personal = Classifier.load(tmp_path / "mine")
    clips = [landmarks.load(p) for p in sorted(person.glob("*/*.npy"))]
    export_onnx(personal, tmp_path / "mine" / "model.onnx", clips)
    np.testing.assert_allclose(Classifier.load(tmp_path / "mine", backend="onnxruntime").predict_proba(clips),
                               personal.predict_proba(clips), atol=1e-5)


def test_clips_without_hands_are_skipped_and_a_sign_left_without_clips_is_refused(base, person, tmp_path):
    landmarks.save(person / "Buy" / "empty.npy", landmarks.empty(12))
    record = enroll(base, person, tmp_path / "mine", settings=FAST)
    assert record["skipped_files"] == {str(person / "Buy" / "empty.npy"): "no hand found in any frame"}

    landmarks.save(person / "Give" / "empty.npy", landmarks.empty(12))
    with pytest.raises(EnrollError, match=r"no usable clip of 'Give'.*Give/empty.npy: no hand found"):
        enroll(base, person, tmp_path / "again", settings=FAST)
    assert not (tmp_path / "again").exists()


def test_label_clash_other_layout_and_reenrolment_are_refused(base, person, tmp_path):
    shutil.move(person / "Buy", person / "buy ")  # differs from the base's "Buy" only in case and spacing
    with pytest.raises(EnrollError, match=r"label clash: 'buy ' \(base model: 'Buy'\)"):
        enroll(base, person, tmp_path / "mine", settings=FAST)
    shutil.move(person / "buy ", person / "Buy")

    other = tmp_path / "other"
    shutil.copytree(base, other)
    meta = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**meta, "landmark_layout": "hands-42-xyz"}))
    with pytest.raises(ArtifactError, match="landmark layout 'hands-42-xyz'"):
        enroll(other, person, tmp_path / "mine", settings=FAST)

    enroll(base, person, tmp_path / "mine", settings=FAST)
    with pytest.raises(EnrollError, match="already a personal model"):
        enroll(tmp_path / "mine", person, tmp_path / "twice", settings=FAST)
    with pytest.raises(EnrollError, match="that is the base model"):
        enroll(base, person, base, settings=FAST)


def test_cli(base, person, tmp_path, capsys):
    assert main(["enroll", str(base), str(person), "--out", str(tmp_path / "mine"), "--views", "1", "--steps", "5",
                 "--signer", "ana", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signer"] == "ana"
    assert main(["enroll", str(base), str(person), "--out", str(tmp_path / "mine")]) == 2
    assert "already holds a model" in capsys.readouterr().err
