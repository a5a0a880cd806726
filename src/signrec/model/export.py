"""ONNX export: the whole network, featurisation included, as one file that ONNX Runtime runs anywhere.

The graph takes raw landmarks, exactly what `signrec extract` writes: input `landmarks` float32
(batch, frames, 543, 3) with NaN for undetected points and NaN padding past each sequence's length,
input `lengths` int64 (batch,); outputs `logits` and `probabilities` (batch, classes). Batch and
frame count are dynamic. Labels, feature spec and landmark layout are stored in the file's metadata,
so an app needs nothing else. Every export is checked against the torch model on real landmark
sequences before it is written; a file that disagrees by more than 1e-4 is never left behind.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError, __version__
from signrec import landmarks as lm
from signrec.files import atomic_path
from signrec.model.artifact import Classifier
from signrec.model.runtime import OnnxNetwork, pad_batch

TOLERANCE = 1e-4
"""Largest allowed |torch logit - onnxruntime logit| on the parity inputs."""
DEFAULT_OPSET = 17
CHECK_SEQUENCES = 8
"""How many real sequences the parity check runs (in one padded batch and one by one)."""


class ExportError(SignrecError):
    """An export that failed or did not match the torch model."""


def _with_probabilities(classifier: Classifier) -> Any:
    """The network plus a softmax output, so that apps need no maths of their own."""
    import torch

    class WithProbabilities(torch.nn.Module):
        def __init__(self, network: torch.nn.Module):
            super().__init__()
            self.network = network

        def forward(self, landmarks: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.network(landmarks, lengths)
            return logits, torch.softmax(logits, dim=-1)

    return WithProbabilities(classifier.network()).eval()


def torch_logits(classifier: Classifier, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return classifier.network()(torch.from_numpy(batch), torch.from_numpy(lengths)).float().numpy()


def parity(classifier: Classifier, onnx_path: str | os.PathLike, sequences: Sequence[np.ndarray]) -> dict[str, Any]:
    """Largest |torch - onnxruntime| logit difference: all sequences in one padded batch, and each alone."""
    net = OnnxNetwork(onnx_path)
    cases = [pad_batch(sequences)] + [pad_batch([s]) for s in sequences]
    diff = max(float(np.max(np.abs(torch_logits(classifier, b, n) - net(b, n)))) for b, n in cases)
    return {"max_abs_diff": diff, "tolerance": TOLERANCE, "ok": diff < TOLERANCE, "sequences": len(sequences),
            "frames": sorted({len(s) for s in sequences})}


def export_onnx(classifier: Classifier, path: str | os.PathLike, sequences: Sequence[np.ndarray] | None = None,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write `classifier` to `path` as ONNX, verified against torch on `sequences` (real (T,543,3) arrays).

    The parity result is stored in the file's metadata (`signrec.parity`); a mismatch raises ExportError
    and leaves no file.
    """
    import onnx
    import torch

    if classifier.backend != "torch":
        raise ExportError("export needs the torch model; load it with backend='torch'")
    sequences = [lm.validate(s, f"<parity sequence {i}>") for i, s in enumerate(sequences or [])]
    if not sequences:
        raise ExportError("the parity check needs at least one real landmark sequence")
    path = Path(path)
    example = pad_batch(sequences[:2])
    with atomic_path(path, suffix=".onnx") as tmp:
        try:
            with warnings.catch_warnings():
                # The tracer warns about LSTM batch sizes and shape checks; the parity check below runs other
                # batch sizes and lengths than the traced ones, which is the real test of those warnings.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
                torch.onnx.export(
                    _with_probabilities(classifier), (torch.from_numpy(example[0]), torch.from_numpy(example[1])),
                    str(tmp), dynamo=False, opset_version=opset,
                    input_names=["landmarks", "lengths"], output_names=["logits", "probabilities"],
                    dynamic_axes={"landmarks": {0: "batch", 1: "frames"}, "lengths": {0: "batch"},
                                  "logits": {0: "batch"}, "probabilities": {0: "batch"}})
        except Exception as exc:  # the tracer raises many types; the user needs the message, not the type
            raise ExportError(f"torch.onnx.export failed for model {classifier.model_name!r}: {exc}") from exc
        check = parity(classifier, tmp, sequences)
        if not check["ok"]:
            raise ExportError(f"ONNX output differs from torch by {check['max_abs_diff']:.3g} "
                              f"(tolerance {TOLERANCE}) on {len(sequences)} real sequences; not written")
        model = onnx.load(str(tmp))
        onnx.checker.check_model(model)
        _set_metadata(model, classifier, check)
        onnx.save(model, str(tmp))
    return path


def _set_metadata(model: Any, classifier: Classifier, check: dict[str, Any]) -> None:
    """What an app needs to use the file alone: labels in output order, the input layout, provenance."""
    model.producer_name, model.producer_version = "signrec", __version__
    model.doc_string = ("Sign classifier. Input landmarks float32 (batch, frames, 543, 3): MediaPipe Holistic "
                        "pose 0-32, face 33-500, left hand 501-521, right hand 522-542, normalised x, y, z; "
                        "NaN where not detected and past each sequence's length. Input lengths int64 (batch,).")
    props = {
        "signrec.labels": json.dumps(classifier.labels, ensure_ascii=False),
        "signrec.landmark_layout": lm.LAYOUT,
        "signrec.landmarks": json.dumps(classifier.describe()["landmarks"]),
        "signrec.feature_spec": json.dumps(classifier.spec.to_dict()),
        "signrec.model": classifier.model_name,
        "signrec.version": __version__,
        "signrec.parity": json.dumps(check),
        "signrec.weights_sha256": classifier.weights_digest(),
    }
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def check_sequences(classifier: Classifier, sources: Sequence[str | os.PathLike] = (),
                    n: int = CHECK_SEQUENCES) -> list[np.ndarray]:
    """Real landmark sequences for the parity check: from `sources` (.npy, video or labels.csv files),
    else from the data the model was trained (or enrolled) on, as recorded in its model.json."""
    from signrec.video.holistic import load_or_extract

    paths: list[Path] = []
    for source in sources or _training_data(classifier):
        source = Path(source)
        if source.suffix.lower() == ".csv" or source.is_dir():
            from signrec.landmarks.dataset import read_labels

            # a dataset of videos: only the chosen few are extracted, never the whole dataset
            samples = read_labels(source / "labels.csv" if source.is_dir() else source)
            step = max(1, len(samples) // n)  # spread over labels and signers, not the first rows only
            paths += [s.path for s in samples[::step][:n]]
        else:
            paths.append(source)
    if not paths:
        raise ExportError("no real landmark sequences for the parity check: pass --check FILE "
                          "(a landmark .npy, a video, a labels.csv or a dataset folder)")
    return [load_or_extract(p) for p in paths[:n]]


def _training_data(classifier: Classifier) -> list[str]:
    found = [(classifier.meta.get(key) or {}).get("data") for key in ("training", "enrollment")]
    return [data for data in found if isinstance(data, str) and data and Path(data).exists()][:1]
