"""ONNX export of a real trained model, checked against torch on real landmarks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from signrec.cli import main
from signrec.landmarks import load
from signrec.landmarks.dataset import read_labels
from signrec.model import export
from signrec.model.artifact import ArtifactError, Classifier
from signrec.model.export import ExportError, export_onnx, torch_logits
from signrec.model.runtime import OnnxNetwork, pad_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def real_sequences(mlr511_tiny_landmarks, mlr511_sentence_landmarks) -> list[np.ndarray]:
    """Clips of several lengths and signers, plus a long multi-sign recording (longer than any clip)."""
    samples = read_labels(mlr511_tiny_landmarks)
    return [load(s.path) for s in samples[::9]] + [mlr511_sentence_landmarks]


def test_cli_exports_next_to_the_model_and_reports_parity(mlr511_tiny_model, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    assert main(["export", str(model), "--format", "onnx", "--json"]) == 0  # parity inputs: the training data
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(model / "model.onnx") and (model / "model.onnx").is_file()
    assert report["parity"]["ok"] and report["parity"]["max_abs_diff"] < 1e-4
    assert report["parity"]["sequences"] >= 2
    onnx = OnnxNetwork(model / "model.onnx")
    assert json.loads(onnx.metadata["signrec.labels"]) == Classifier.load(model).labels
    assert onnx.metadata["signrec.landmark_layout"] == "holistic-543-xyz"
    assert json.loads(onnx.metadata["signrec.landmarks"]) == {"face": True, "hand_model": "full"}
    assert [i.name for i in onnx.session.get_inputs()] == ["landmarks", "lengths"]
    assert [o.name for o in onnx.session.get_outputs()] == ["logits", "probabilities"]

    # the onnxruntime backend now predicts what torch predicts
    seqs = [load(s.path) for s in read_labels(Classifier.load(model).meta["training"]["data"])[:6]]
    np.testing.assert_allclose(Classifier.load(model, backend="onnxruntime").predict_proba(seqs),
                               Classifier.load(model).predict_proba(seqs), atol=1e-5)
    assert onnx.metadata["signrec.weights_sha256"] == Classifier.load(model).weights_digest()

    # weights trained again after the export: the stale model.onnx is refused, not run
    retrained = Classifier.load(model)
    with torch.no_grad():
        next(retrained.network().parameters()).add_(0.01)
    retrained.save(model)
    with pytest.raises(ArtifactError, match="not exported from the weights.*signrec export"):
        Classifier.load(model, backend="onnxruntime")
    assert main(["predict", str(model), str(read_labels(retrained.meta["training"]["data"])[0].path),
                 "--backend", "onnxruntime"]) == 2
    assert "signrec export" in capsys.readouterr().err


def test_dynamic_batch_and_length_match_torch(mlr511_tiny_model, real_sequences, tmp_path):
    classifier = Classifier.load(mlr511_tiny_model)
    path = export_onnx(classifier, tmp_path / "m.onnx", real_sequences[:2], opset=17)
    onnx = OnnxNetwork(path, threads=1)
    lengths = sorted({len(s) for s in real_sequences})
    assert lengths[-1] > 100 and len(lengths) >= 3  # lengths never seen while tracing
    for batch in ([real_sequences[-1]], real_sequences[:3], real_sequences, [s[:7] for s in real_sequences]):
        x, n = pad_batch(batch)
        logits = onnx(x, n)
        assert logits.shape == (len(batch), len(classifier.labels))
        assert np.max(np.abs(logits - torch_logits(classifier, x, n))) < 1e-4
    probabilities = onnx.session.run(["probabilities"], {"landmarks": x, "lengths": n})[0]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_failed_parity_leaves_no_file(mlr511_tiny_model, real_sequences, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", 0.0)
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(Classifier.load(mlr511_tiny_model), tmp_path / "m.onnx", real_sequences[:3])
    assert list(tmp_path.iterdir()) == []


def test_user_errors_exit_2(tmp_path, mlr511_tiny_model, capsys):
    assert main(["export", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    assert main(["export", str(model), "--check", str(tmp_path / "missing.npy")]) == 2
    assert "missing.npy" in capsys.readouterr().err
    assert not (model / "model.onnx").exists()
    with pytest.raises(ArtifactError, match="signrec export"):
        Classifier.load(model, backend="onnxruntime")


def test_live_with_the_onnxruntime_backend_reads_what_torch_reads(mlr511_tiny_model, shared_data, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    assert main(["export", str(model)]) == 0
    capsys.readouterr()
    clip = shared_data / "mlr511_arsl" / "videos" / "user08" / "G08" / "R04.mp4"
    words = {}
    for backend in ("torch", "onnxruntime"):
        assert main(["live", str(model), "--video", str(clip), "--headless", "--backend", backend]) == 0
        words[backend] = json.loads(capsys.readouterr().out.splitlines()[-1])["words"]
    assert len(words["torch"]) == 1
    assert [(w["label"], w["start"], w["end"]) for w in words["onnxruntime"]] == \
        [(w["label"], w["start"], w["end"]) for w in words["torch"]]
    assert words["onnxruntime"][0]["confidence"] == pytest.approx(words["torch"][0]["confidence"], abs=1e-3)
