"""Property-based tests of featurisation and of loading model folders (issue 20, point 11).

Features of any landmark array are finite numbers of the spec's shape, or a SignrecError; a model folder whose
model.json or model.safetensors was damaged in any way loads as before or is refused with an ArtifactError that
names the folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signrec import SignrecError
from signrec.landmarks import MAX_ABS
from signrec.model.artifact import META, WEIGHTS, Classifier
from signrec.model.features import FeatureSpec, featurize
from strategies import any_arrays, json_values, landmark_arrays

SPECS = st.sampled_from([FeatureSpec(), FeatureSpec(frames=0), FeatureSpec(subset="hands", max_gap=4),
                         FeatureSpec(subset="all", normalize=False, canonical_hand=False, trim=False)])


# --- features ----------------------------------------------------------------------------------------------

@given(landmark_arrays(), SPECS)
def test_featurize_any_landmarks(array: np.ndarray, spec: FeatureSpec) -> None:
    try:
        features, valid = featurize(array, spec)
    except SignrecError as exc:  # no frames, or values no landmark can have (inf, over MAX_ABS)
        assert str(exc).startswith("<array>: ") and (len(array) == 0 or not (np.abs(array) <= MAX_ABS).all())
        return
    assert features.shape[1] == spec.n_features and features.dtype == np.float32
    assert valid.shape == features.shape[:1] and valid.dtype == np.bool_
    assert np.isfinite(features).all(), "features must be finite whatever the landmarks"


@given(any_arrays())
def test_featurize_any_shape_or_dtype(array: np.ndarray) -> None:
    try:
        features, _valid = featurize(array)
    except SignrecError as exc:
        assert str(exc).startswith("<array>: ")
        return
    assert np.isfinite(features).all()


@pytest.mark.parametrize("frames", [1, 10_000])
def test_featurize_extreme_lengths(frames: int) -> None:
    rng = np.random.default_rng(0)
    array = rng.uniform(0, 1, (frames, 543, 3)).astype(np.float32)
    for spec in (FeatureSpec(), FeatureSpec(frames=0)):
        features, valid = featurize(array, spec)
        assert np.isfinite(features).all() and valid.any()


def test_featurize_largest_allowed_values_stay_finite() -> None:
    """Coordinates at the largest size validate() lets through must not overflow inside the features."""
    rng = np.random.default_rng(1)
    array = rng.choice([-MAX_ABS, MAX_ABS, 0.5], size=(6, 543, 3)).astype(np.float32)
    for spec in (FeatureSpec(), FeatureSpec(normalize=False), FeatureSpec(frames=0, max_gap=4)):
        assert np.isfinite(featurize(array, spec)[0]).all()


# --- model folders -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained model folder: loading checks do not depend on what the weights learnt."""
    path = tmp_path_factory.mktemp("model")
    Classifier(["Hi", "Eat", "Sleep"], FeatureSpec(), "lstm", {"hidden": 8, "num_layers": 1}).save(path)
    return path


def _copy(model_dir: Path, scratch: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=scratch)) / "model"
    shutil.copytree(model_dir, path)
    return path


def _load(path: Path) -> Classifier | None:
    try:
        classifier = Classifier.load(path)
    except SignrecError as exc:
        assert str(path) in str(exc), f"error does not name the model folder: {exc}"
        return None
    proba = classifier.predict_proba([np.full((3, 543, 3), 0.5, dtype=np.float32)])
    assert proba.shape == (1, len(classifier.labels)) and np.isfinite(proba).all()
    return classifier


PATHS = st.sampled_from([(), ("labels",), ("feature_spec",), ("feature_spec", "frames"), ("feature_spec", "subset"),
                         ("feature_spec", "version"), ("model",), ("model", "name"), ("model", "hparams"),
                         ("model", "hparams", "hidden"), ("model", "hparams", "num_layers"), ("landmarks",),
                         ("landmarks", "hand_model"), ("format_version",), ("landmark_layout",)])
HUGE = st.sampled_from([2**31, 10**12, 2**62, -1, 0, 1.5, True, "64"])


@given(PATHS, st.one_of(json_values(), HUGE), st.booleans())
def test_model_json_any_edit(model_dir: Path, scratch: Path, where: tuple[str, ...], value: object, delete: bool) -> None:
    path = _copy(model_dir, scratch)
    meta = json.loads((path / META).read_text())
    if not where:
        meta = value
    else:
        parent = meta
        for key in where[:-1]:
            parent = parent[key]
        if delete:
            parent.pop(where[-1], None)
        else:
            parent[where[-1]] = value
    (path / META).write_text(json.dumps(meta))
    _load(path)


@given(st.one_of(st.binary(max_size=64).map(lambda b: ("replace", b)),
                 st.integers(0, 4000).map(lambda n: ("truncate", n)),
                 st.tuples(st.integers(0, 4000), st.binary(min_size=1, max_size=16)).map(lambda t: ("flip", t)),
                 json_values().map(lambda v: ("header", v)),
                 st.sampled_from([2**63, 2**40, 0, 7]).map(lambda n: ("length", n))))
def test_model_safetensors_any_damage(model_dir: Path, scratch: Path, damage: tuple[str, object]) -> None:
    path = _copy(model_dir, scratch)
    weights = path / WEIGHTS
    data = bytearray(weights.read_bytes())
    how, arg = damage
    if how == "replace":
        data = bytearray(arg)
    elif how == "truncate":
        data = data[:arg]
    elif how == "flip":
        at, chunk = arg
        data[at:at + len(chunk)] = chunk
    elif how == "header":  # a valid length prefix before any JSON value (a list, a number, ...)
        header = json.dumps(arg).encode()
        data = bytearray(len(header).to_bytes(8, "little") + header) + data[8 + int.from_bytes(data[:8], "little"):]
    else:  # a header length that points past the file or into it
        data[:8] = int(arg).to_bytes(8, "little")
    weights.write_bytes(bytes(data))
    _load(path)


def test_model_json_huge_hparam_refused_without_allocating(model_dir: Path, scratch: Path) -> None:
    """Regression: hparams edited to hidden=10**12 built the network before comparing it with the weights."""
    path = _copy(model_dir, scratch)
    meta = json.loads((path / META).read_text())
    meta["model"]["hparams"]["hidden"] = 10**12
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(SignrecError, match="weights do not fit"):
        Classifier.load(path)


def test_model_json_not_an_object(model_dir: Path, scratch: Path) -> None:
    """Regression: a model.json holding a list or a number raised AttributeError."""
    path = _copy(model_dir, scratch)
    (path / META).write_text("[1, 2]")
    with pytest.raises(SignrecError, match="model.json"):
        Classifier.load(path)


@pytest.mark.parametrize("where, value", [(("labels",), [["Hi"], "Eat"]), (("feature_spec",), 3),
                                          (("landmarks", "hand_model"), ["full"]), (("model",), [1]),
                                          (("model", "name"), None)])
def test_model_json_wrong_types_name_the_folder(model_dir: Path, scratch: Path, where: tuple[str, ...],
                                                value: object) -> None:
    """Regression (found by the properties above): these raised TypeError or AttributeError."""
    path = _copy(model_dir, scratch)
    meta = json.loads((path / META).read_text())
    parent = meta
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(SignrecError, match=str(path)):
        Classifier.load(path)
