"""The saved model: one folder that is everything needed to recognise signs again.

    model.safetensors   weights (safetensors: loading never executes code, unlike pickle)
    model.json          format version, landmark layout and the landmark models (face on or off, full or
                        lite hands), label map, feature spec, model name and hyperparameters, training
                        config, metrics, package versions
    model.onnx          after `signrec export` (optional)

The label map and a digest of the feature spec are also written into the safetensors header, so
a model.json edited or paired with other weights is refused instead of silently mislabelling.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from signrec import SignrecError, __version__, landmarks
from signrec.files import atomic_path, write_json
from signrec.model.features import FeatureExtractor, FeatureSpec
from signrec.model.networks import build_model
from signrec.model.runtime import DEFAULT_RUNTIME, RUNTIMES, OnnxNetwork, TorchNetwork, pad_batch
from signrec.video.settings import MODEL_FIELDS, ExtractSettings

FORMAT_VERSION = 1
"""Version of the folder layout and model.json schema; bumped when old readers could misread it."""

WEIGHTS = "model.safetensors"
SAFETENSORS_MAX_HEADER = 100_000_000
"""The safetensors format's own limit on its JSON header, in bytes."""
META = "model.json"
ONNX = "model.onnx"
_PACKAGES = ("torch", "lightning", "mediapipe", "numpy", "onnxruntime")


class ArtifactError(SignrecError):
    """A model folder that can not be used as asked, with the folder and the reason named."""


class Network(nn.Module):
    """Landmarks in, logits out: featurisation inside the graph, so ONNX and serving see raw landmarks."""

    def __init__(self, spec: FeatureSpec, model: nn.Module):
        super().__init__()
        self.features = FeatureExtractor(spec)
        self.model = model

    def forward(self, landmarks: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, mask = self.features(landmarks, lengths)
        return self.model(x, mask)

    def embed(self, landmarks: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The network's embedding of each sequence, (B, D): what its head classifies."""
        x, mask = self.features(landmarks, lengths)
        return self.model.encode(x, mask)


def package_versions() -> dict[str, str]:
    versions = {"signrec": __version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def spec_digest(spec: FeatureSpec) -> str:
    return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, shapes and values: ties an exported model.onnx to the weights it came
    from, so that a model trained again after its export is not run from the stale file."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class Classifier:
    """A trained sign classifier: label map + feature spec + network, loadable with torch or ONNX Runtime."""

    def __init__(self, labels: Sequence[str], spec: FeatureSpec, model_name: str, hparams: dict[str, Any],
                 model: nn.Module | None = None, meta: dict[str, Any] | None = None,
                 runner: Any = None, backend: str = DEFAULT_RUNTIME):
        self.labels = list(labels)
        self.spec = spec
        self.model_name = model_name
        self.hparams = dict(hparams)
        self.meta = dict(meta or {})
        self.backend = backend
        if model is None and runner is None:
            model = build_model(model_name, spec.n_features, len(self.labels), **self.hparams)
        self._model = model
        self._network: Network | None = None
        self._runner = runner or TorchNetwork(self.network())  # (landmarks, lengths) -> logits, numpy in and out

    # ---- inference -------------------------------------------------------------------------
    def network(self) -> nn.Module:
        """The torch module that maps (landmarks (B,T,543,3), lengths (B,)) to logits; what ONNX export traces."""
        if self._model is None:
            raise ArtifactError("network() needs the torch backend; this classifier was loaded for onnxruntime")
        if self._network is None:
            self._network = Network(self.spec, self._model).eval()
        return self._network

    def predict_proba(self, sequences: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Class probabilities (N, n_classes) for landmark arrays of shape (T, 543, 3) each."""
        sequences = [landmarks.validate(s, f"<sequence {i}>") for i, s in enumerate(sequences)]
        if not sequences:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        out = []
        # Sorting by length keeps padding small; results go back into input order below.
        order = np.argsort([len(s) for s in sequences], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch, lengths = pad_batch([sequences[i] for i in idx])
            out.append(self._logits(batch, lengths))
        logits = np.empty((len(sequences), len(self.labels)), dtype=np.float32)
        logits[order] = np.concatenate(out)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def _logits(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return np.asarray(self._runner(batch, lengths), dtype=np.float32)

    def embed(self, sequences: Sequence[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """The network's embedding (N, D) of landmark arrays (T, 543, 3): the seam for personal enrollment and
        for telling signs from non-signs. Needs the torch backend."""
        sequences = [landmarks.validate(s, f"<sequence {i}>") for i, s in enumerate(sequences)]
        network = self.network()
        out = []
        with torch.inference_mode():
            for start in range(0, len(sequences), batch_size):
                batch, lengths = pad_batch(sequences[start:start + batch_size])
                out.append(network.embed(torch.from_numpy(batch), torch.from_numpy(lengths)).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, network.model.embed_dim), dtype=np.float32)

    # ---- the landmarks it expects ------------------------------------------------------------
    def landmark_settings(self, base: ExtractSettings | None = None) -> ExtractSettings:
        """`base` with the landmark models this classifier was trained on: every video it sees is extracted so,
        except that no face model runs for a feature spec that does not read the face."""
        made = self.meta.get("landmarks") or {}
        settings = replace(base or ExtractSettings(), **{name: made[name] for name in MODEL_FIELDS if name in made})
        return settings if self.spec.uses_face else replace(settings, face=False)

    def check_landmarks(self, made: dict[str, Any], source: str | os.PathLike) -> None:
        """Refuse landmarks made with other landmark models (extract.landmark_models) than the training data;
        whether the face was made does not matter to a model that does not read it."""
        expected = {name: getattr(self.landmark_settings(), name) for name in MODEL_FIELDS}
        if not self.spec.uses_face:
            made = {**made, "face": False}
        if dict(made) != expected:
            raise ArtifactError(f"{source}: landmarks made with {made}, but this model was trained on landmarks "
                                f"made with {expected}; extract again with those settings")

    # ---- persistence -----------------------------------------------------------------------
    def weights_digest(self) -> str:
        """weights_digest of this classifier's torch weights (recorded in its ONNX export)."""
        if self._model is None:
            raise ArtifactError("weights_digest() needs the torch backend")
        return weights_digest(self._model.state_dict())

    def describe(self) -> dict[str, Any]:
        """The model.json content."""
        core = {
            "format_version": FORMAT_VERSION,
            "landmark_layout": landmarks.LAYOUT,
            "landmarks": {name: value for name, value in asdict(self.landmark_settings()).items()
                          if name in MODEL_FIELDS},
            "labels": self.labels,
            "feature_spec": self.spec.to_dict(),
            "model": {"name": self.model_name, "hparams": self.hparams},
            "versions": self.meta.get("versions") or package_versions(),
        }
        return {**core, **{k: v for k, v in self.meta.items() if k not in core}}

    def save(self, path: str | os.PathLike) -> None:
        """Write the model folder; each file atomically, weights first so model.json never points at nothing."""
        if self._model is None:
            raise ArtifactError("only a torch-backed classifier can be saved")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        header = {"format_version": str(FORMAT_VERSION), "labels": json.dumps(self.labels, ensure_ascii=False),
                  "feature_spec_sha": spec_digest(self.spec), "model": self.model_name}
        state = {k: v.detach().cpu().contiguous() for k, v in self._model.state_dict().items()}
        with atomic_path(path / WEIGHTS, suffix=".safetensors") as tmp:
            save_file(state, str(tmp), metadata=header)
        write_json(path / META, self.describe())

    def save_meta(self, path: str | os.PathLike) -> None:
        """Rewrite only model.json (what the model card adds, say): the weights and their checks stay as they are."""
        write_json(Path(path) / META, self.describe())

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = DEFAULT_RUNTIME) -> Classifier:
        """Load a model folder for a runtime in RUNTIMES, refusing one made for another landmark layout, feature
        spec or label map."""
        path = Path(path)
        if backend not in RUNTIMES:
            raise ArtifactError(f"unknown backend {backend!r}; choose from {list(RUNTIMES)}")
        if path.is_file() and path.name in (META, WEIGHTS, ONNX):
            path = path.parent
        if not (path / META).is_file():
            raise ArtifactError(_not_a_model(path))
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path / META}: unreadable ({exc})") from None
        labels, spec, name, hparams = _check_meta(path, meta)
        header = _weights_metadata(path / WEIGHTS)
        if header.get("labels") is not None and json.loads(header["labels"]) != labels:
            raise ArtifactError(f"{path}: the label map in {META} does not match the one the weights were "
                                f"trained with ({json.loads(header['labels'])}); restore {META}")
        if header.get("feature_spec_sha") not in (None, spec_digest(spec)):
            raise ArtifactError(f"{path}: the feature spec in {META} differs from the one the weights were "
                                "trained with; restore it or retrain")
        if backend == "onnxruntime":
            if not (path / ONNX).is_file():
                raise ArtifactError(f"{path}: no {ONNX}; run `signrec export {path}` first")
            runner = OnnxNetwork(path / ONNX)
            try:
                current = weights_digest(load_file(str(path / WEIGHTS)))
            except (SafetensorError, RuntimeError) as exc:
                raise ArtifactError(f"{path / WEIGHTS}: unreadable ({exc})") from None
            if runner.metadata.get("signrec.weights_sha256") != current:
                raise ArtifactError(f"{path / ONNX} was not exported from the weights in {path / WEIGHTS} (trained "
                                    f"again since, or exported by an older signrec); run `signrec export {path}`")
            return cls(labels, spec, name, hparams, meta=meta, runner=runner, backend=backend)
        try:
            if not meta.get("enrollment"):  # a personal model's weights hold more than its base network's
                _check_shapes(path, name, spec.n_features, len(labels), hparams)
            state = load_file(str(path / WEIGHTS))
            model = build_model(name, spec.n_features, len(labels), **hparams)
            if meta.get("enrollment"):
                from signrec.model.personal import PersonalModel

                model = PersonalModel.fitting(model, state)
            model.load_state_dict(state)
        except SignrecError as exc:  # an unknown model name or hyper-parameter in model.json
            raise ArtifactError(f"{path / META}: {exc}") from None
        except (SafetensorError, RuntimeError, TypeError, KeyError, ValueError, OverflowError) as exc:
            raise ArtifactError(f"{path}: weights do not fit model {name!r} with {len(labels)} labels and "
                                f"{spec.n_features} features: {str(exc).splitlines()[0]}") from None
        return cls(labels, spec, name, hparams, model=model.eval(), meta=meta, backend=backend)


def _check_shapes(path: Path, name: str, n_features: int, n_classes: int, hparams: dict[str, Any]) -> None:
    """Compare the network model.json describes with the weights' shapes before allocating it: hyper-parameters
    edited to huge sizes (hidden=10**12) would otherwise take all memory before load_state_dict could object."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(name, n_features, n_classes, **hparams).state_dict().items()}
    with safe_open(str(path / WEIGHTS), "pt") as weights:
        found = {k: tuple(weights.get_slice(k).get_shape()) for k in weights.keys()}  # noqa: SIM118 (no __iter__)
    if expected != found:
        differ = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        raise RuntimeError(f"the weights differ in {differ[:3]}")


def _weights_metadata(file: Path) -> dict[str, Any]:
    """The `__metadata__` of a safetensors file, checked before anything is allocated: the header's length
    comes first, and random bytes read as a length of exabytes."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            length = int.from_bytes(fh.read(8), "little")
            if not 2 <= length <= min(size - 8, SAFETENSORS_MAX_HEADER):
                raise ArtifactError(f"{file}: not a safetensors file (its first 8 bytes give a header of {length} "
                                    f"bytes; the file has {size})")
            header = json.loads(fh.read(length))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file}: missing or not a safetensors file ({exc})") from None
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{file}: not a safetensors file (its header is not a JSON object of tensors)")
    return metadata


def _not_a_model(path: Path) -> str:
    """Why `path` is no model folder; a run folder (from `signrec train`) is the usual mistake, so it is named."""
    if not path.exists():
        return f"{path}: no such folder"
    if (path / "model" / META).is_file():
        return f"{path}: not a signrec model folder (no {META}); did you mean {path / 'model'}?"
    return f"{path}: not a signrec model folder (no {META})"


def _check_meta(path: Path, meta: Any) -> tuple[list[str], FeatureSpec, str, dict[str, Any]]:
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path / META}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: model format version {meta.get('format_version')!r}; this signrec "
                            f"{__version__} reads version {FORMAT_VERSION}")
    if meta.get("landmark_layout") != landmarks.LAYOUT:
        raise ArtifactError(f"{path}: trained on landmark layout {meta.get('landmark_layout')!r}, this signrec "
                            f"produces {landmarks.LAYOUT!r}; retrain on landmarks of this layout")
    labels = meta.get("labels")
    if (not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels)
            or len(set(labels)) != len(labels)):
        raise ArtifactError(f"{path}: label map must be a non-empty list of distinct names, got {labels!r}")
    spec_dict = meta.get("feature_spec") or {}
    if not isinstance(spec_dict, dict):
        raise ArtifactError(f"{path}: invalid feature spec in {META} (expected an object, got {spec_dict!r})")
    current = FeatureSpec().version
    if spec_dict.get("version") != current:
        raise ArtifactError(f"{path}: feature spec version {spec_dict.get('version')!r}, this signrec computes "
                            f"version {current}; retrain the model")
    try:
        spec = FeatureSpec.from_dict(spec_dict)
    except (SignrecError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: invalid feature spec in {META} ({exc})") from None
    made = meta.get("landmarks") or {}
    if not isinstance(made, dict):
        raise ArtifactError(f"{path}: invalid landmark models in {META} (expected an object, got {made!r})")
    try:
        replace(ExtractSettings(), **{name: made[name] for name in MODEL_FIELDS if name in made})
    except (SignrecError, TypeError) as exc:  # TypeError: a list or an object where a name belongs
        raise ArtifactError(f"{path}: invalid landmark models in {META} ({exc})") from None
    model = meta.get("model") or {}
    hparams = model.get("hparams") or {} if isinstance(model, dict) else None
    if not isinstance(hparams, dict):
        raise ArtifactError(f"{path}: invalid model in {META} (expected {{\"name\", \"hparams\": {{...}}}}, "
                            f"got {model!r})")
    return labels, spec, str(model.get("name")), hparams
