"""Featurisation: pure math on small synthetic arrays, then real MediaPipe landmarks and the ONNX graph."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from signrec import SignrecError
from signrec.landmarks import PARTS, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER
from signrec.model.features import (
    MIRROR_INDEX,
    RAISED_BELOW_SHOULDERS,
    SUBSETS,
    FeatureExtractor,
    FeatureSpec,
    featurize,
    mirror,
    subset_indices,
)
from signrec.video.holistic import HolisticExtractor, extract_video
from signrec.video.settings import ExtractSettings

LEFT, RIGHT = PARTS["left_hand"], PARTS["right_hand"]


def body(frames: int = 20, seed: int = 0) -> np.ndarray:
    """A synthetic signer: shoulders 0.2 apart at y=0.5, points scattered around them, a moving right hand."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 0.7, size=(frames, 543, 3)).astype(np.float32)
    x[:, POSE_LEFT_SHOULDER, :2] = (0.6, 0.5)
    x[:, POSE_RIGHT_SHOULDER, :2] = (0.4, 0.5)
    x[:, RIGHT, 0] += np.linspace(0, 0.2, frames, dtype=np.float32)[:, None]
    x[:, LEFT] = np.nan
    return x


def flags(features: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Presence flags (T', parts): left hand, right hand[, pose, face]."""
    return features[:, -(2 if spec.subset == "hands" else 4):]


def test_spec_round_trip_and_refusals():
    spec = FeatureSpec(subset="hands", frames=0, use_z=True)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert FeatureSpec.from_dict({"version": 2}) == FeatureSpec()
    for old_or_future in (1, 99):  # version 1 lacked resting hands, trim and distances: its models need retraining
        with pytest.raises(SignrecError, match="version"):
            FeatureSpec.from_dict({**spec.to_dict(), "version": old_or_future})
    with pytest.raises(SignrecError, match="unknown field"):
        FeatureSpec.from_dict({**spec.to_dict(), "colour": "red"})
    with pytest.raises(SignrecError, match="subset"):
        FeatureSpec(subset="feet")
    with pytest.raises(SignrecError, match="frames"):
        FeatureSpec(frames=-1)
    with pytest.raises(SignrecError, match="'frames' must be int"):
        FeatureSpec.from_dict({"version": 2, "frames": "32"})
    with pytest.raises(SignrecError, match="'velocity' must be bool"):
        FeatureSpec.from_dict({"version": 2, "velocity": 1})


@pytest.mark.parametrize("subset", SUBSETS)
@pytest.mark.parametrize("frames", [0, 32])
def test_shapes_and_no_nan(subset, frames):
    spec = FeatureSpec(subset=subset, frames=frames, use_z=subset == "hands")
    x = body(23)
    x[4:9, :, :] = np.nan  # nothing detected in some frames
    features, valid = featurize(x, spec)
    assert features.shape == ((frames or 23), spec.n_features) and features.dtype == np.float32
    assert valid.shape == (frames or 23,) and valid.all()
    assert np.isfinite(features).all()


@pytest.mark.parametrize("options", [{"hand_frame": True}, {"lag2": True}, {"hand_frame": True, "lag2": True,
                                                                        "hand_shape": False, "use_z": False}])
@pytest.mark.parametrize("subset", SUBSETS)
def test_hand_frame_and_lag2_shapes_and_no_nan(subset, options):
    spec = FeatureSpec(subset=subset, **options)
    x = body(23)
    x[4:9, :, :] = np.nan
    features, valid = featurize(x, spec)
    assert features.shape == (spec.frames, spec.n_features) and valid.all() and np.isfinite(features).all()


def right_hand(frames: int = 6) -> np.ndarray:
    """A right hand in a known place and size: wrist at (0.45, 0.45), middle knuckle 0.05 above it."""
    x = body(frames)
    rng = np.random.default_rng(5)
    x[:, RIGHT, :2] = 0.45 + rng.uniform(-0.04, 0.04, size=(frames, 21, 2)).astype(np.float32)
    x[:, RIGHT.start, :2] = (0.45, 0.45)
    x[:, RIGHT.start + 9, :2] = (0.45, 0.40)
    x[:, RIGHT, 2] = 0.0
    return x


def test_hand_frame_keeps_the_wrist_in_the_body_and_the_rest_in_the_hand():
    """Moving a hand moves only its wrist's position; growing it about the wrist changes no feature but the
    knuckle-independent body distances; one palm size for the whole sequence."""
    spec = FeatureSpec(frames=0, trim=False, subset="hands", hand_frame=True, velocity=False, distances=False,
                       use_z=False)
    assert spec.n_features == 2 * 2 + 2 * 20 * 2 + 2
    x = right_hand()
    a = featurize(x, spec)[0]
    moved = x.copy()
    moved[:, RIGHT, :2] += (0.1, -0.05)
    b = featurize(moved, spec)[0]
    np.testing.assert_allclose(b[:, 2:4] - a[:, 2:4], np.broadcast_to([0.1 / 0.2, -0.05 / 0.2], (6, 2)), atol=1e-5)
    np.testing.assert_allclose(b[:, 4:], a[:, 4:], atol=1e-5)  # the shape, in the hand's own frame
    grown = x.copy()
    grown[:, RIGHT, :2] = (x[:, RIGHT, :2] - 0.45) * 1.7 + 0.45
    np.testing.assert_allclose(featurize(grown, spec)[0], a, atol=1e-5)
    knuckle = 4 + 2 * 20 + 2 * 8  # right hand's point 9, relative to its wrist, in palm sizes
    np.testing.assert_allclose(a[:, knuckle:knuckle + 2], np.broadcast_to([0.0, -1.0], (6, 2)), atol=1e-5)
    turned = x.copy()  # the palm foreshortened in one frame: the scale is the sequence's, not that frame's
    turned[2, RIGHT.start + 9, :2] = (0.45, 0.43)
    c = featurize(turned, spec)[0]
    np.testing.assert_allclose(np.delete(c, 2, axis=0)[:, 4:-2], np.delete(a, 2, axis=0)[:, 4:-2] * 0.05 / (0.27 / 6),
                               atol=1e-5)


def test_lag2_is_the_difference_over_two_frames():
    spec = FeatureSpec(frames=0, trim=False, subset="hands", hand_shape=False, distances=False, use_z=False,
                       lag2=True)
    x = right_hand(7)
    x[:, RIGHT, 0] += (np.arange(7, dtype=np.float32) ** 2 * 0.01)[:, None]  # speeding up to the right
    features = featurize(x, spec)[0]
    positions = features[:, :84]
    lag1, lag2 = features[:, 84:168], features[:, 168:252]
    np.testing.assert_allclose(lag1[1:], positions[1:] - positions[:-1], atol=1e-6)
    np.testing.assert_allclose(lag2[2:], positions[2:] - positions[:-2], atol=1e-6)
    np.testing.assert_allclose(lag2[1], positions[1] - positions[0], atol=1e-6)  # before the start: frame 0
    assert (lag2[0] == 0).all()


def test_n_features_per_subset():
    assert {s: FeatureSpec(subset=s).n_features for s in SUBSETS} == {"compact": 802, "all": 3448, "hands": 404}


def test_only_the_hands_subset_reads_no_face():
    x = body(12)
    with_face, _ = featurize(x, FeatureSpec(subset="hands"))
    x[:, PARTS["face"]] = np.nan
    np.testing.assert_array_equal(featurize(x, FeatureSpec(subset="hands"))[0], with_face)
    assert [FeatureSpec(subset=s).uses_face for s in SUBSETS] == [True, True, False]


def test_mirror_is_an_involution_that_swaps_hands():
    x = body(5)
    x[:, LEFT] = 0.25
    twice = mirror(mirror(x))
    np.testing.assert_allclose(twice, x, atol=1e-6)
    once = mirror(x)
    np.testing.assert_allclose(once[:, RIGHT], np.broadcast_to([0.75, 0.25, 0.25], (5, 21, 3)))
    np.testing.assert_allclose(once[:, LEFT, 0], 1 - x[:, RIGHT, 0])
    np.testing.assert_allclose(once[:, LEFT, 1:], x[:, RIGHT, 1:])
    t = torch.from_numpy(x)
    torch.testing.assert_close(mirror(mirror(t, 0.0), 0.0), t, equal_nan=True)
    assert (MIRROR_INDEX[MIRROR_INDEX] == np.arange(543)).all()
    for subset in SUBSETS:  # mirroring never moves a point out of a subset
        assert set(MIRROR_INDEX[subset_indices(subset)]) == set(subset_indices(subset))


def test_normalisation_is_invariant_to_translation_and_scale():
    spec = FeatureSpec(use_z=True)
    x = body(15)
    moved = x.copy()
    moved[..., :2] = (moved[..., :2] - 0.5) * 1.7 + np.array([0.2, -0.1], dtype=np.float32)
    moved[..., 2] *= 1.7
    # rtol: the synthetic hand is small, so its shape features (divided by hand size) run to ~20
    np.testing.assert_allclose(featurize(moved, spec)[0], featurize(x, spec)[0], atol=5e-5, rtol=2e-5)


def test_without_pose_coordinates_pass_through():
    """Hands-only data (already body-centred, e.g. LSA64) keeps its coordinates: centre 0, scale 1."""
    x = np.full((4, 543, 3), np.nan, dtype=np.float32)
    x[:, RIGHT] = 0.3
    features, _ = featurize(x, FeatureSpec(subset="hands", frames=0, velocity=False, hand_shape=False, use_z=False,
                                           distances=False))
    np.testing.assert_allclose(features[:, 42:84], 0.3)
    np.testing.assert_allclose(features[:, :42], 0.0)
    np.testing.assert_allclose(flags(features, FeatureSpec(subset="hands")), [[0.0, 1.0]] * 4)


def test_missing_parts_are_flagged_and_zero():
    spec = FeatureSpec(frames=0, max_gap=0)
    x = body(10)
    x[3, RIGHT] = np.nan
    features, _ = featurize(x, spec)
    f = flags(features, spec)
    assert (f[:, 0] == 0).all() and f[3, 1] == 0 and (np.delete(f[:, 1], 3) == 1).all()
    assert (features[3, 42:84] == 0).all() and (features[:, :42] == 0).all()


def test_short_hand_gaps_are_interpolated_long_ones_are_not():
    spec = FeatureSpec(frames=0, max_gap=3, velocity=False, hand_shape=False, use_z=False, trim=False)
    x = body(20)
    x[5:8, RIGHT] = np.nan    # 3 frames: filled
    x[10:14, RIGHT] = np.nan  # 4 frames: stays missing
    x[:2, RIGHT] = np.nan     # leading: nothing to interpolate from
    features, _ = featurize(x, spec)
    right = flags(features, spec)[:, 1]
    assert right[5:8].tolist() == [1, 1, 1]
    assert right[10:14].tolist() == [0, 0, 0, 0] and right[:2].tolist() == [0, 0]
    # filled values lie on the line between the neighbours
    np.testing.assert_allclose(features[6, 42:84], (features[4, 42:84] + features[8, 42:84]) / 2, atol=1e-5)


def test_left_handed_signer_is_mirrored_to_right_handed():
    x = body(12)
    left = mirror(x)  # the same signing done with the left hand
    assert np.isnan(left[:, RIGHT]).all()
    for spec in (FeatureSpec(), FeatureSpec(normalize=False)):
        np.testing.assert_allclose(featurize(left, spec)[0], featurize(x, spec)[0], atol=1e-5)
    raw = FeatureSpec(canonical_hand=False)
    assert flags(featurize(left, raw)[0], raw)[:, 0].min() == 1


def test_resting_hand_is_missing_raised_hand_is_not():
    spec = FeatureSpec(frames=0, trim=False)
    x = body(6)
    x[:, LEFT] = (0.6, 0.5 + 0.2 * 1.4, 0.0)  # left wrist 1.4 shoulder widths under the shoulders: raised
    x[3:, LEFT, 1] = 0.5 + 0.2 * 1.6         # from frame 3 on, 1.6: resting
    assert flags(featurize(x, spec)[0], spec)[:, 0].tolist() == [1, 1, 1, 0, 0, 0]
    kept = FeatureSpec(frames=0, trim=False, drop_resting_hands=False)
    assert flags(featurize(x, kept)[0], kept)[:, 0].tolist() == [1] * 6


def test_trim_drops_frames_without_hands_at_both_ends():
    x = body(12)
    padded = np.concatenate([body(5, seed=7), x, body(3, seed=8)])
    padded[:5, RIGHT] = np.nan
    padded[-3:, RIGHT] = np.nan
    for frames in (0, 16):
        spec = FeatureSpec(frames=frames)
        got, valid = featurize(padded, spec)
        want, want_valid = featurize(x, spec)
        np.testing.assert_allclose(got[:len(want)], want, atol=1e-4)
        assert valid.sum() == want_valid.sum() == (frames or 12)
    no_hands = body(7)
    no_hands[:, RIGHT] = np.nan
    assert featurize(no_hands, FeatureSpec(frames=0))[1].sum() == 7  # nothing to trim to: kept whole


def test_distances_ignore_rotation_and_measure_the_hand():
    spec = FeatureSpec(frames=0, trim=False)
    x = body(5)
    x[:, RIGHT, :2] = (0.45, 0.45)
    x[:, RIGHT.start + 9, :2] = (0.45, 0.40)   # middle knuckle: hand size 0.05
    x[:, RIGHT.start + 4, :2] = (0.50, 0.45)   # thumb tip: 1 hand size from the wrist
    x[:, RIGHT, 2] = 0.0
    a = featurize(x, spec)[0]
    angle = np.deg2rad(25)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    turned = x.copy()
    turned[..., :2] = (x[..., :2] - 0.5) @ rot.T + 0.5  # about the shoulder midpoint
    b = featurize(turned, spec)[0]
    n = spec.n_features - 4
    right_pairs = slice(n - 15 - 18, n - 18)  # layout: left pairs, left-to-face, right pairs, right-to-face
    np.testing.assert_allclose(a[:, right_pairs], b[:, right_pairs], atol=1e-4)
    assert not np.allclose(a[:, :n - 66], b[:, :n - 66], atol=1e-3)  # positions do turn
    np.testing.assert_allclose(a[:, right_pairs.start], 1.0, atol=1e-5)  # pair (wrist, thumb tip)


def test_resampling_lengths_and_values():
    spec = FeatureSpec(frames=8, subset="hands", velocity=False, hand_shape=False, use_z=False)
    for frames in (1, 3, 8, 50):
        features, valid = featurize(body(frames), spec)
        assert features.shape == (8, spec.n_features) and valid.all()
    x = body(2)
    x[:, RIGHT, :2] = np.array([[0.4, 0.5], [0.6, 0.5]], dtype=np.float32)[:, None, :]  # moves 1 shoulder width
    features, _ = featurize(x, FeatureSpec(frames=5, subset="hands", velocity=False, hand_shape=False, use_z=False))
    np.testing.assert_allclose(features[:, 42], [-0.5, -0.25, 0.0, 0.25, 0.5], atol=1e-6)


def test_padding_does_not_change_features():
    """A sequence in a padded batch gets exactly the features it gets alone, whatever the padding holds."""
    for spec in (FeatureSpec(), FeatureSpec(frames=0)):
        extractor = FeatureExtractor(spec)
        short, long = body(9, seed=1), body(16, seed=2)
        batch = np.stack([np.concatenate([short, np.random.default_rng(3).random((7, 543, 3), np.float32)]), long])
        features, valid = extractor(torch.from_numpy(batch), torch.tensor([9, 16]))
        alone, alone_valid = featurize(short, spec)
        n = len(alone)
        torch.testing.assert_close(features[0, :n], torch.from_numpy(alone), atol=1e-5, rtol=0)
        assert valid[0, :n].all() and not valid[0, n:].any() and valid[1].all()
        assert (features[0, n:] == 0).all()


def reference_points(array: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Steps 2-4 of the featurisation written plainly in numpy on all 543 points (what FeatureExtractor
    does on the subset's points only): gap filling, normalisation, resting hands, handedness."""
    x = array.astype(np.float32)
    for part in (LEFT, RIGHT):
        seen = np.isfinite(x[:, part]).all((1, 2))
        t = 0
        while t < len(x):
            end = t
            while end < len(x) and not seen[end]:
                end += 1
            if end > t > 0 and end < len(x) and end - t <= spec.max_gap:
                for u in range(t, end):
                    w = np.float32((u - t + 1) / (end - t + 1))
                    x[u, part] = x[t - 1, part] + (x[end, part] - x[t - 1, part]) * w
            t = end + 1
    if spec.normalize:
        left, right = x[:, POSE_LEFT_SHOULDER, :2], x[:, POSE_RIGHT_SHOULDER, :2]
        ok = np.isfinite(left).all(1) & np.isfinite(right).all(1)
        if ok.any():
            x[..., :2] -= ((left + right) / 2)[ok].mean(0)
            x /= max(np.linalg.norm(left - right, axis=1)[ok].mean(), 1e-6)
            if spec.drop_resting_hands:
                for part in (LEFT, RIGHT):
                    x[x[:, part.start, 1] > RAISED_BELOW_SHOULDERS, part] = np.nan
    if spec.canonical_hand:
        travel, seen = [], []
        for part in (LEFT, RIGHT):
            present = np.isfinite(x[:, part, :2]).all((1, 2))
            step = np.linalg.norm(np.diff(x[:, part, :2].mean(1), axis=0), axis=1)
            travel.append(step[present[1:] & present[:-1]].sum())
            seen.append(present.sum())
        if travel[0] > travel[1] or (travel[0] == travel[1] and seen[0] > seen[1]):
            x = mirror(x, 0.0 if spec.normalize else 0.5)
    return x


def assert_matches_reference(array: np.ndarray, spec: FeatureSpec) -> None:
    """The extractor's features equal those of the numpy reference's points with those steps switched off."""
    plain = FeatureSpec(**{**spec.to_dict(), "normalize": False, "canonical_hand": False, "max_gap": 0})
    want, want_valid = featurize(reference_points(array, spec), plain)
    got, got_valid = featurize(array, spec)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=str(spec))
    assert (got_valid == want_valid).all()


REFERENCE_SPECS = [FeatureSpec(subset=s, **kw) for s in SUBSETS for kw in (
    {}, {"frames": 0, "use_z": False, "max_gap": 2, "trim": False}, {"normalize": False, "max_gap": 0},
    {"canonical_hand": False, "distances": False}, {"hand_frame": True, "lag2": True})]


def test_subset_first_matches_all_points_reference():
    """Computing on the subset's points first (the fast path) gives what the steps give on all 543 points."""
    right = body(24, seed=4)
    right[5:7, RIGHT] = np.nan    # short gap: filled
    right[12:18, RIGHT] = np.nan  # long gap: kept
    right[20, :, :] = np.nan      # nothing detected
    right[9:11, RIGHT, 1] += 2.0  # hanging down: resting
    left = mirror(right)
    left[3:5, LEFT] = np.nan
    for spec in REFERENCE_SPECS:
        for array in (right, left):
            assert_matches_reference(array, spec)


# --- real landmarks ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(shared_data):
    """user01 (left-handed; the published clip is mirrored, so MediaPipe sees the right hand), user03 (right-
    handed), both signing 'Hi', and user01's clip flipped back so that MediaPipe sees a left-handed signer."""
    videos = shared_data / "mlr511_arsl" / "videos"
    settings = ExtractSettings(frame_step=2)  # half the frames: half the test time, same signing
    user01, _ = extract_video(videos / "user01" / "G01" / "R01.mp4", settings)
    user03, _ = extract_video(videos / "user03" / "G01" / "R01.mp4", settings)
    cap = cv2.VideoCapture(str(videos / "user01" / "G01" / "R01.mp4"))
    with HolisticExtractor(settings) as extractor:
        flipped, index = [], 0
        while (frame := cap.read()[1]) is not None:
            if index % settings.frame_step == 0:
                flipped.append(extractor.process(cv2.flip(frame, 1)))
            index += 1
    cap.release()
    return {"user01": user01, "user03": user03, "user01_flipped": np.stack(flipped)}


def hand_presence(array: np.ndarray) -> tuple[float, float]:
    return tuple(float((~np.isnan(array[:, part, 0])).all(1).mean()) for part in (LEFT, RIGHT))


def test_real_signers_all_come_out_right_handed(real):
    left, right = hand_presence(real["user01_flipped"])
    assert left > right + 0.2, "flipped video should show a left-handed signer"
    spec = FeatureSpec()
    for name, array in real.items():
        features, valid = featurize(array, spec)
        assert np.isfinite(features).all() and valid.all()
        left, right = flags(features, spec)[:, :2].mean(0)
        assert right > left + 0.2, f"{name}: dominant hand should be the right one after canonicalisation"
    # the flipped clip becomes (nearly) the original again
    a, _ = featurize(real["user01"], spec)
    b, _ = featurize(real["user01_flipped"], spec)
    assert np.abs(a[:, :42 * 2] - b[:, :42 * 2]).mean() < 0.05


def test_subset_first_matches_all_points_reference_on_real_data(real):
    long = np.concatenate([real["user03"], real["user01_flipped"]])  # right- then left-handed, with gaps
    for spec in REFERENCE_SPECS:
        for array in (real["user01_flipped"], long):
            assert_matches_reference(array, spec)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # sizes fixed on purpose: only B and T vary
def test_onnx_export_matches_torch_on_real_data(real, tmp_path):
    """Exported on a short clip, run on batches of other sizes and much longer, padded, gappy sequences."""
    user01, user03, flipped = real["user01"], real["user03"], real["user01_flipped"]
    long = np.concatenate([user03, flipped])
    assert np.isnan(long[:, PARTS["right_hand"]]).all(axis=(1, 2)).any()  # gaps to fill and to leave
    for spec in (FeatureSpec(), FeatureSpec(frames=0, subset="all", use_z=True, max_gap=4, hand_frame=True, lag2=True)):
        extractor = FeatureExtractor(spec).eval()
        path = tmp_path / f"features_{spec.frames}.onnx"
        example = (torch.from_numpy(user01[:10])[None], torch.tensor([10]))
        torch.onnx.export(extractor, example, path, dynamo=False, opset_version=17,
                          input_names=["landmarks", "lengths"], output_names=["features", "valid"],
                          dynamic_axes={"landmarks": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                                        "features": {0: "batch", 1: "out_time"}, "valid": {0: "batch", 1: "out_time"}})
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        late = long.copy()
        late[:15, PARTS["left_hand"]] = np.nan
        late[:15, PARTS["right_hand"]] = np.nan  # no hand before frame 15, past the 10 frames of the export
        for batch in ([user03], [long, user01, flipped], [late]):  # batch sizes, padded lengths, a late start
            lengths = np.array([len(a) for a in batch])
            padded = np.full((len(batch), lengths.max(), 543, 3), np.nan, np.float32)
            for i, a in enumerate(batch):
                padded[i, :len(a)] = a
            want, want_valid = extractor(torch.from_numpy(padded), torch.from_numpy(lengths))
            got, got_valid = session.run(None, {"landmarks": padded, "lengths": lengths})
            assert got.shape == tuple(want.shape)
            assert np.abs(got - want.numpy()).max() < 1e-4
            assert (got_valid == want_valid.numpy()).all()
