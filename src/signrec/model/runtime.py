"""Runtimes: what runs a model's network on a padded batch of landmarks, and the batching that feeds them.

Every runtime is called the same way, numpy in and out: landmarks float32 (B, T, 543, 3), NaN-padded past
each length, and lengths int64 (B,) -> logits float32 (B, classes). RUNTIMES is the one list of them; every
`--backend` option takes its choices from it. A new runtime (say, TFLite) is one class here and one entry there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from signrec import SignrecError, landmarks

RUNTIMES: dict[str, str] = {
    "torch": "PyTorch on the model folder's weights (model.safetensors)",
    "onnxruntime": "ONNX Runtime on the model folder's model.onnx (made by `signrec export`)",
}
"""name: what it runs. `Classifier.load(path, backend=name)` loads a model folder for one of them."""
DEFAULT_RUNTIME = "torch"


class RuntimeLoadError(SignrecError):
    """A model file that a runtime can not load, with the file named."""


def pad_batch(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length (T,543,3) arrays into (B, Tmax, 543, 3), NaN-padded, and lengths (B,)."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    batch = np.full((len(sequences), int(lengths.max()), landmarks.N_LANDMARKS, landmarks.N_CHANNELS),
                    np.nan, dtype=np.float32)
    for i, s in enumerate(sequences):
        batch[i, : len(s)] = s
    return batch, lengths


class OnnxNetwork:
    """An exported model run by ONNX Runtime, called like the torch network: (landmarks, lengths) -> logits.

    numpy in and out: float32 (B, T, 543, 3) NaN-padded and int64 (B,) -> float32 (B, classes).
    One thread by default: the network is small, and on a busy 2-core machine one thread was faster than
    ONNX Runtime's default pool both for one sequence (10 vs 22 ms) and for a batch of 32 (0.27 vs 0.46 s).
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise RuntimeLoadError(f"{self.path}: can not be loaded by onnxruntime: {exc}") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, landmarks: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feeds = {"landmarks": np.asarray(landmarks, dtype=np.float32), "lengths": np.asarray(lengths, dtype=np.int64)}
        return self.session.run(["logits"], feeds)[0]



class TorchNetwork:
    """The torch network called like the other runtimes: numpy in, numpy out, no gradients."""

    def __init__(self, network: torch.nn.Module):
        self.network = network

    def __call__(self, landmarks: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.network(torch.from_numpy(landmarks), torch.from_numpy(lengths)).float().numpy()
