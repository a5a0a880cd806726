"""Augmentations: reproducible, NaN-preserving, shape rules, and the shared mirror."""

from __future__ import annotations

import numpy as np
import pytest

from signrec import SignrecError
from signrec.landmarks import PARTS, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER
from signrec.model.features import FeatureSpec, featurize
from signrec.train.augment import (
    Compose,
    FrameDrop,
    HandDrop,
    Mirror,
    OneOf,
    Rotate,
    Scale,
    Shear,
    Shift,
    Speed,
    TemporalCrop,
    body_centre,
    default_augmentation,
)

SPATIAL = [Scale(p=1.0), Rotate(p=1.0), Shear(p=1.0), Shift(p=1.0), Mirror(p=1.0)]
TEMPORAL = [Speed(p=1.0), TemporalCrop(p=1.0), FrameDrop(p=1.0, rate=0.3)]
ALL = SPATIAL + TEMPORAL + [HandDrop(p=1.0), default_augmentation()]


def sample(frames: int = 30, seed: int = 0) -> np.ndarray:
    """Random landmarks with the left hand missing in a third of the frames and the face in two frames."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.8, size=(frames, 543, 3)).astype(np.float32)
    x[: frames // 3, PARTS["left_hand"]] = np.nan
    x[[3 % frames, 7 % frames], PARTS["face"]] = np.nan
    return x


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_same_seed_same_output_and_input_untouched(transform):
    x = sample()
    before = x.copy()
    a = transform(x, np.random.default_rng(5))
    b = transform(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
    assert a.dtype == np.float32 and a.shape[1:] == (543, 3) and len(a) >= 1


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_p_zero_is_identity(transform):
    x = sample()
    off = type(transform)(**{**transform.__dict__, "p": 0.0})
    np.testing.assert_array_equal(off(x, np.random.default_rng(0)), x)


@pytest.mark.parametrize("transform", SPATIAL, ids=lambda t: type(t).__name__)
def test_spatial_transforms_keep_shape_and_missing_points(transform):
    x = sample()
    out = transform(x, np.random.default_rng(1))
    assert out.shape == x.shape
    if isinstance(transform, Mirror):  # the missing left hand becomes the missing right hand
        np.testing.assert_array_equal(np.isnan(out[:, PARTS["right_hand"]]), np.isnan(x[:, PARTS["left_hand"]]))
    else:
        np.testing.assert_array_equal(np.isnan(out), np.isnan(x))
        assert not np.allclose(out, x, equal_nan=True)


@pytest.mark.parametrize("transform", TEMPORAL, ids=lambda t: type(t).__name__)
def test_temporal_transforms_change_length_but_make_no_new_nan(transform):
    x = sample(40)
    x[: 40 // 3, PARTS["left_hand"]] = 0.5  # nothing missing at all
    x[[3, 7], PARTS["face"]] = 0.5
    lengths = {len(transform(x, np.random.default_rng(seed))) for seed in range(8)}
    assert all(1 <= n <= 60 for n in lengths) and lengths != {40}
    assert all(np.isfinite(transform(x, np.random.default_rng(seed))).all() for seed in range(8))


def test_temporal_transforms_keep_missing_frames_missing():
    x = sample(40)
    out = Speed(p=1.0, low=1.0, high=1.0)(x, np.random.default_rng(0))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(x))
    crop = TemporalCrop(p=1.0, min_fraction=0.5)(x, np.random.default_rng(0))
    assert any(np.array_equal(crop, x[s:s + len(crop)], equal_nan=True) for s in range(41 - len(crop)))


def test_one_frame_survives_everything():
    x = sample(1)
    for transform in TEMPORAL + [FrameDrop(p=1.0, rate=1.0), HandDrop(p=1.0, max_fraction=1.0)]:
        assert len(transform(x, np.random.default_rng(0))) == 1


def test_hand_drop_only_removes_one_hand():
    x = sample()
    out = HandDrop(p=1.0, max_fraction=0.5)(x, np.random.default_rng(3))
    new = np.isnan(out) & ~np.isnan(x)
    assert new.any()
    touched = [name for name, part in PARTS.items() if new[:, part].any()]
    assert len(touched) == 1 and touched[0] in ("left_hand", "right_hand")
    assert 1 <= new.any(axis=(1, 2)).sum() <= 15


def test_mirror_twice_is_identity_and_matches_a_flipped_image():
    x = sample()
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(Mirror(p=1.0)(Mirror(p=1.0)(x, rng), rng), x, atol=1e-6)
    once = Mirror(p=1.0)(x, rng)
    np.testing.assert_allclose(once[:, POSE_LEFT_SHOULDER, 0], 1 - x[:, POSE_RIGHT_SHOULDER, 0], atol=1e-6)


def test_rotation_is_about_the_body_centre():
    x = sample()
    centre = body_centre(x)
    out = Rotate(p=1.0, degrees=30)(x, np.random.default_rng(0))
    np.testing.assert_allclose(body_centre(out), centre, atol=1e-5)
    dist = np.linalg.norm(x[..., :2] - centre, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(out[..., :2] - centre, axis=-1), dist, atol=1e-5)


def test_geometry_is_what_normalised_features_ignore():
    """Scale and shift about the body centre leave the body-centred features unchanged."""
    x = sample()
    x[:, POSE_LEFT_SHOULDER, :2], x[:, POSE_RIGHT_SHOULDER, :2] = (0.6, 0.5), (0.4, 0.5)
    spec = FeatureSpec(use_z=True)
    moved = Compose([Scale(p=1.0), Shift(p=1.0)])(x, np.random.default_rng(0))
    np.testing.assert_allclose(featurize(moved, spec)[0], featurize(x, spec)[0], atol=1e-4)


def test_compose_and_one_of():
    x = sample()
    chain = Compose([Shift(p=1.0), Mirror(p=1.0)])
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(0)
    rng2.random()  # Compose's own draw for its p
    np.testing.assert_array_equal(chain(x, rng1), Mirror(p=1.0)(Shift(p=1.0)(x, rng2), rng2))
    pick_second = OneOf([Shift(p=1.0), Mirror(p=1.0)], weights=[0, 1])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(pick_second(x, rng), Mirror(p=1.0)(x, rng))
    results = {OneOf([Shift(p=1.0), Mirror(p=1.0)])(x, np.random.default_rng(s)).tobytes() for s in range(10)}
    assert len(results) > 2


def test_bad_settings_are_refused():
    with pytest.raises(SignrecError):
        Scale(p=1.5)
    with pytest.raises(SignrecError):
        Speed(low=2.0, high=1.0)
    with pytest.raises(SignrecError):
        OneOf([Shift()], weights=[1, 2])
    with pytest.raises(SignrecError):
        OneOf([])
