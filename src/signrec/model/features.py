"""Landmarks -> model input: the featurisation every stage shares.

`FeatureExtractor` is a torch module without weights, written only in ops that
`torch.onnx.export` can trace (no Python branching on tensor values), so the very same
code runs in training, in the server and inside the exported ONNX graph. `FeatureSpec`
describes it and is saved with every model; a model never sees features made another way.

Per sequence, in order:
1. frames past `lengths` are dropped (set missing);
2. if `max_gap` > 0, gaps of up to that many frames in which a hand is missing are filled by linear
   interpolation;
3. body-centred normalisation: centre = mean shoulder midpoint, scale = mean shoulder width
   over the frames where both shoulders were seen. Sequences without any pose keep centre 0 and
   scale 1: such data (e.g. hands-only LSA64) is published already in a body frame. A hand hanging
   below the body (wrist more than 1.5 shoulder widths under the shoulders) is then marked missing:
   whether a resting hand is in the picture depends on the camera, not on the sign;
4. handedness: if the left hand dominates (travels farther while seen; on a tie, is seen more often),
   the sequence is mirrored (x -> -x) and left/right swapped, so every signer looks right-handed;
5. the frames before the first and after the last hand are dropped (trim), then the landmark subset
   is taken and resampled to `frames` frames (linear in time), or kept at its own length with a
   validity mask when `frames` is 0;
6. features per frame: positions, hand shape relative to the wrist (divided by hand size),
   velocities, distances among wrist and fingertips and from them to the nose and lips, and per-part
   presence. Missing values become 0 only beside a presence flag that says they are missing. Options, off by
   default: `hand_frame` (each hand's points in its own wrist-centred, palm-scaled frame instead of also in
   body coordinates) and `lag2` (differences over two frames beside the velocities).

Steps 3 (resting hands), 5 (trim) and the distances came in version 2 of the spec; they took the default
LSTM's mean top-1 on unseen MLR511 signers (leave one signer out) from 86.4 % to 90.9 % (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from signrec import SignrecError
from signrec.landmarks import (
    N_CHANNELS,
    N_LANDMARKS,
    PARTS,
    POSE_LEFT_SHOULDER,
    POSE_RIGHT_SHOULDER,
    validate,
)

FEATURE_VERSION = 2
SUBSETS = ("compact", "all", "hands")

_POSE = PARTS["pose"].start
_FACE = PARTS["face"].start
_LEFT = PARTS["left_hand"].start
_RIGHT = PARTS["right_hand"].start
HAND_POINTS = 21
_HAND_MIDDLE_MCP = 9  # wrist -> middle-finger knuckle is the hand's size, stable across hand shapes
RAISED_BELOW_SHOULDERS = 1.5
"""A wrist more than this many shoulder widths below the shoulder line is resting (in the lap, at the hip)."""

# Pose left/right pairs (MediaPipe Pose numbering): eyes, ears, mouth corners, then 11..32 body.
_POSE_PAIRS = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10)] + [(i, i + 1) for i in range(11, 33, 2)]
# Face mesh: these 28 points lie on the midline; the other 220 of the first 248 are mirrored, in
# order, by points 248..467 (read off MediaPipe's canonical_face_model.obj).
_FACE_MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                 94, 151, 152, 164, 168, 175, 195, 197, 199, 200)


def _mirror_index() -> np.ndarray:
    """Permutation of the 543 landmarks that swaps every left point with its right twin."""
    index = np.arange(N_LANDMARKS)
    for a, b in _POSE_PAIRS:
        index[_POSE + a], index[_POSE + b] = _POSE + b, _POSE + a
    face_side = [i for i in range(248) if i not in _FACE_MIDLINE]
    for k, i in enumerate(face_side):
        index[_FACE + i], index[_FACE + 248 + k] = _FACE + 248 + k, _FACE + i
    hand = np.arange(HAND_POINTS)
    index[_LEFT + hand], index[_RIGHT + hand] = _RIGHT + hand, _LEFT + hand
    return index


MIRROR_INDEX = _mirror_index()
_MIRROR_INDEX_T = torch.from_numpy(MIRROR_INDEX)

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)


def mirror(x: ArrayT, centre_x: float = 0.5) -> ArrayT:
    """Mirror landmarks (..., 543, 3) about the vertical line x = `centre_x` and swap left/right.

    The result is what MediaPipe reports for the horizontally flipped video (centre_x=0.5 in image
    coordinates; 0 for body-centred ones). Works on numpy arrays and torch tensors alike; mirroring
    twice is the identity.
    """
    if isinstance(x, Tensor):
        sign = x.new_tensor([-1.0, 1.0, 1.0])
        offset = x.new_tensor([2.0 * centre_x, 0.0, 0.0])
        return x[..., _MIRROR_INDEX_T.to(x.device), :] * sign + offset
    sign = np.array([-1.0, 1.0, 1.0], dtype=x.dtype)
    offset = np.array([2.0 * centre_x, 0.0, 0.0], dtype=x.dtype)
    return x[..., MIRROR_INDEX, :] * sign + offset


# The compact subset: what carries meaning in signing. Face indices are face-mesh numbers.
_COMPACT_POSE = (0, 11, 12, 13, 14, 15, 16, 23, 24)  # nose, shoulders, elbows, wrists, hips
_LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
         267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
_EYEBROWS = (63, 66, 70, 105, 107, 293, 296, 300, 334, 336)
_NOSE_TIP = (1,)
_TIPS = (0, 4, 8, 12, 16, 20)  # wrist and fingertips
_PAIRS = list(itertools.combinations(range(len(_TIPS)), 2))
_FACE_ANCHORS = (1, 13, 14)  # nose tip, upper and lower lip


def subset_indices(subset: str) -> np.ndarray:
    """Landmark indices of a subset; hands always come first (left 21, right 21)."""
    hands = list(range(_LEFT, _LEFT + HAND_POINTS)) + list(range(_RIGHT, _RIGHT + HAND_POINTS))
    if subset == "hands":
        return np.array(hands)
    if subset == "all":
        return np.array(hands + list(range(_POSE, _LEFT)))
    if subset == "compact":
        face = sorted(_LIPS + _EYEBROWS + _NOSE_TIP)
        return np.array(hands + [_POSE + i for i in _COMPACT_POSE] + [_FACE + i for i in face])
    raise SignrecError(f"unknown landmark subset {subset!r}; choose one of {', '.join(SUBSETS)}")


def _subset_parts(subset: str) -> list[str]:
    """Parts present in a subset, in the order of their presence flags."""
    return ["left_hand", "right_hand"] + ([] if subset == "hands" else ["pose", "face"])


_FIELD_TYPES = {"int": int, "str": str, "bool": bool}


@dataclass(frozen=True)
class FeatureSpec:
    """How landmarks become features. Saved with every model; change `version` when semantics change."""

    version: int = FEATURE_VERSION
    """Featurisation version; a spec from another version is refused rather than silently reinterpreted."""
    subset: str = "compact"
    """Landmarks used: "compact" (hands, upper body, lips, eyebrows, nose), "all" (543) or "hands" (42)."""
    frames: int = 24
    """Output length: resample every sequence to this many frames; 0 keeps each sequence's own length. 24 scored
    as 32 did on unseen MLR511 signers (91.8 % and 91.9 %) for 15 % less classifier time."""
    use_z: bool = True
    """Include MediaPipe's z (depth). Noisy for the body, but it tells apart hand shapes that look alike in
    x and y; on by default since version 2, whose gain on unseen signers was measured with it."""
    normalize: bool = True
    """Body-centred coordinates (shoulder midpoint, shoulder width); else MediaPipe image coordinates."""
    hand_shape: bool = True
    """Add each hand's points relative to its wrist, divided by hand size: shape independent of position."""
    velocity: bool = True
    """Add frame-to-frame differences of the positions."""
    max_gap: int = 0
    """Fill a missing hand by linear interpolation across gaps of at most this many frames (0: never). Off by
    default: 4 gave the same mean top-1 on unseen MLR511 signers (91.9 %) for a fifth of the ONNX time."""
    canonical_hand: bool = True
    """Mirror sequences whose dominant hand is the left, so that all signers look right-handed."""
    distances: bool = True
    """Add distances among each hand's wrist and fingertips (divided by hand size) and from those to the
    nose tip and lips (in shoulder widths): hand shape and place, free of rotation."""
    drop_resting_hands: bool = True
    """Treat a hand whose wrist hangs more than `RAISED_BELOW_SHOULDERS` below the shoulders as missing:
    whether a resting hand is in the picture depends on the camera, not on the sign (needs `normalize`)."""
    trim: bool = True
    """Drop the leading and trailing frames without a hand, so that every sign starts at its first movement
    however long the signer waited (with `drop_resting_hands`: without a raised hand)."""
    hand_frame: bool = False
    """Per-part normalisation: a hand's points other than its wrist appear only in the hand's own frame (centred
    on its wrist, divided by its palm size, wrist to middle-finger knuckle, averaged over the frames where it
    is seen), not also in body coordinates; the wrist keeps its body position. Off: not better in
    leave-one-signer-out tests (BENCHMARKS.md)."""
    lag2: bool = False
    """Add differences over two frames (x[t] - x[t-2]) of the position features beside `velocity`'s one-frame
    ones. Off: not better in leave-one-signer-out tests (BENCHMARKS.md)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value, kind = getattr(self, f.name), _FIELD_TYPES[f.type]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SignrecError(f"feature spec field {f.name!r} must be {f.type}, got {value!r}")
        if self.version != FEATURE_VERSION:
            raise SignrecError(f"feature spec version {self.version} is not supported "
                               f"(this signrec reads version {FEATURE_VERSION})")
        if self.subset not in SUBSETS:
            raise SignrecError(f"unknown landmark subset {self.subset!r}; choose one of {', '.join(SUBSETS)}")
        if self.frames < 0 or self.max_gap < 0:
            raise SignrecError(f"frames and max_gap must be >= 0, got {self.frames} and {self.max_gap}")

    @property
    def dims(self) -> int:
        return 3 if self.use_z else 2

    @property
    def n_points(self) -> int:
        return len(subset_indices(self.subset))

    @property
    def uses_face(self) -> bool:
        """Whether any feature reads the face mesh: if not (hands only), no face model need run for this spec."""
        return self.subset != "hands"

    @property
    def n_features(self) -> int:
        """Length F of each frame's feature vector."""
        shape = 2 * (HAND_POINTS - 1) * self.dims
        positions = self.n_points * self.dims - (shape if self.hand_frame else 0)
        hand_shape = shape if self.hand_shape or self.hand_frame else 0
        moving = positions + (hand_shape if self.hand_frame else 0)  # what the lag features difference
        velocity = moving * (int(self.velocity) + int(self.lag2))
        distances = 0
        if self.distances:
            distances = 2 * len(_PAIRS) + (0 if self.subset == "hands" else 2 * len(_TIPS) * len(_FACE_ANCHORS))
        return positions + hand_shape + velocity + distances + len(_subset_parts(self.subset))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Inverse of `to_dict`; refuses unknown fields and versions. Missing fields take defaults."""
        if not isinstance(data, dict) or "version" not in data:
            raise SignrecError(f"feature spec must be a mapping with a 'version', got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SignrecError(f"feature spec has unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, ...) at frame indices (B, T') -> (B, T', ...)."""
    trailing = [int(n) for n in x.shape[2:]]  # fixed in every graph: as constants, ONNX needs no shape arithmetic
    index = index[(...,) + (None,) * len(trailing)].expand(-1, -1, *trailing)
    return torch.gather(x, 1, index)


def _seen(x: Tensor, dims: int | tuple[int, ...]) -> Tensor:
    """True where every value along `dims` is there: a NaN makes the sum NaN, and NaN != NaN.

    Two ONNX nodes, where isfinite(x).all(dims) takes a dozen; the input contract is NaN for missing.
    """
    total = x.sum(dims)
    return total == total


def _nan_to_zero(x: Tensor) -> Tensor:
    return torch.where(x == x, x, x.new_tensor(0.0))


def resample(x: Tensor, lengths: Tensor, frames: int, first: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Resample frames first .. first + lengths - 1 of x (B, T, ...) to `frames` frames, linearly in time
    (`first` defaults to 0: each sequence's first `lengths` frames).

    Where one of the two neighbouring source frames is missing (NaN), the nearer one is used, so a
    value is missing exactly when its nearest source frame had it missing. Returns (B, frames, ...)
    and the validity mask (B, frames) (False only for empty sequences).
    """
    last = (lengths.float() - 1).clamp(min=0.0)[:, None]  # (B, 1)
    j = torch.arange(frames, device=x.device).float()[None, :]
    pos = j * last / (frames - 1) if frames > 1 else last / 2 + j
    i0 = pos.floor()
    i1 = torch.minimum(i0 + 1, last)
    w = (pos - i0)[(...,) + (None,) * (x.dim() - 2)]
    i0, i1 = i0.long(), i1.long()
    if first is not None:
        i0, i1 = i0 + first[:, None], i1 + first[:, None]
    a, b = _gather_frames(x, i0), _gather_frames(x, i1)
    out = torch.where((a == a) & (b == b), a + (b - a) * w, torch.where(w < 0.5, a, b))
    return out, (lengths > 0)[:, None] & torch.ones(1, frames, dtype=torch.bool, device=x.device)


class FeatureExtractor(torch.nn.Module):
    """(landmarks (B, T, 543, 3) NaN = missing, lengths (B,)) -> (features (B, T', F), valid (B, T')).

    The result is that of running the steps above, in that order, on all 543 points. The order of the work
    is chosen for ONNX Runtime, whose cost for one sequence is mostly per graph node (BENCHMARKS.md,
    classifier latency):
    - the decisions (gaps, body frame, resting hands, handedness, trim) read only the hands and the
      shoulders; both hands go through each step at once, as (B, T, D, 2, 21);
    - normalising and mirroring are an affine map and a permutation per sequence, which commute with
      picking and blending frames: they run after resampling, on the subset's points only;
    - missing stays NaN, which carries itself through the arithmetic, until one NaN -> 0 at the end,
      beside the presence flags.
    """

    def __init__(self, spec: FeatureSpec | None = None):
        super().__init__()
        self.spec = spec or FeatureSpec()
        points = subset_indices(self.spec.subset).tolist()  # hands first: left 0..20, right 21..41
        local = {p: k for k, p in enumerate(points)}
        self.anchors = [] if self.spec.subset == "hands" else [local[_FACE + i] for i in _FACE_ANCHORS]
        hands = [[start + i for i in range(HAND_POINTS)] for start in (_LEFT, _RIGHT)]
        self.register_buffer("hand_points", torch.as_tensor(hands), persistent=False)
        self.register_buffer("body_points", torch.as_tensor(points[2 * HAND_POINTS:], dtype=torch.long), False)
        self.register_buffer("shoulder_points", torch.as_tensor([_POSE + POSE_LEFT_SHOULDER, _POSE + POSE_RIGHT_SHOULDER]),
                             persistent=False)
        self.register_buffer("mirror_points", torch.as_tensor([local[MIRROR_INDEX[p]] for p in points]), False)
        self._feature_tables(len(points))

    def _feature_tables(self, n_points: int) -> None:
        """Constant index tables that turn the per-point features into a few gathers and one matmul."""
        hand = range(1, HAND_POINTS)
        # hand shape: point - wrist, divided by that hand's size; left 20 points, then right 20
        self.register_buffer("shape_points", torch.tensor([s + i for s in (0, HAND_POINTS) for i in hand]), False)
        self.register_buffer("shape_wrists", torch.tensor([s for s in (0, HAND_POINTS) for _ in hand]), False)
        self.register_buffer("shape_hand", torch.tensor([h for h in (0, 1) for _ in hand]), False)
        # with hand_frame, the positions kept in body coordinates: both wrists and every non-hand point
        self.register_buffer("frame_points", torch.tensor([0, HAND_POINTS] + list(range(2 * HAND_POINTS, n_points))),
                             False)
        # distances, per hand: wrist/fingertip pairs (divided by hand size), then each tip to each face anchor
        first, second, divide = [], [], []
        for h, start in enumerate((0, HAND_POINTS)):
            for a, b in _PAIRS:
                first.append(start + _TIPS[a]), second.append(start + _TIPS[b]), divide.append(h)
            for tip in _TIPS:
                for anchor in self.anchors:
                    first.append(start + tip), second.append(anchor), divide.append(2)
        self.register_buffer("dist_first", torch.tensor(first, dtype=torch.long), False)
        self.register_buffer("dist_second", torch.tensor(second, dtype=torch.long), False)
        self.register_buffer("dist_divide", torch.tensor(divide, dtype=torch.long), False)  # 2: not divided
        # presence per part: the mean of the points' flags, as one matmul
        n_hand = 2 * HAND_POINTS
        groups = [(0, HAND_POINTS), (HAND_POINTS, n_hand)]
        if self.spec.subset != "hands":
            n_pose = len(_COMPACT_POSE) if self.spec.subset == "compact" else PARTS["pose"].stop
            groups += [(n_hand, n_hand + n_pose), (n_hand + n_pose, n_points)]
        mean = torch.zeros(n_points, len(groups))
        for g, (a, b) in enumerate(groups):
            mean[a:b, g] = 1.0 / (b - a)
        self.register_buffer("part_mean", mean, False)

    @property
    def n_features(self) -> int:
        return self.spec.n_features

    def forward(self, landmarks: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        spec = self.spec

        def read(points: Tensor, dims: int) -> Tensor:  # slice and cast after the gather: only those points
            out = landmarks[:, :, points]
            return (out[..., :dims] if dims < N_CHANNELS else out).float()

        steps = torch.arange(landmarks.shape[1], device=landmarks.device)
        valid = steps[None, :] < lengths.to(landmarks.device)[:, None]
        lengths = valid.sum(1)  # a length beyond the padded array means the whole array
        nan = landmarks.new_tensor(float("nan"))
        # coordinates before points, so that per-point masks broadcast over long contiguous rows
        hands = read(self.hand_points, spec.dims).permute(0, 1, 4, 2, 3)  # (B, T, D, 2, 21)
        hands = torch.where(valid[:, :, None, None, None], hands, nan)
        if spec.max_gap > 0:
            hands = self._fill_hand_gaps(hands, steps)
        if spec.normalize:
            shoulders = torch.where(valid[:, :, None, None], read(self.shoulder_points, 2), nan)
            shift, scale, has_pose = self._body_frame(shoulders)
            if spec.drop_resting_hands:
                wrist_y = (hands[:, :, 1, :, 0] - shift[:, 1, None, None]) / scale[:, None, None]  # (B, T, 2)
                resting = (wrist_y > RAISED_BELOW_SHOULDERS) & has_pose[:, None, None]
                hands = torch.where(resting[:, :, None, :, None], nan, hands)
        first, lengths = self._trim(hands, lengths, steps) if spec.trim else (torch.zeros_like(lengths), lengths)
        body = read(self.body_points, spec.dims).transpose(2, 3)  # (B, T, D, K)
        x = torch.cat([hands.flatten(3), body], dim=3)  # (B, T, D, points)
        if spec.frames > 0:
            x, valid = resample(x, lengths, spec.frames, first)
        else:
            index = torch.minimum(first[:, None] + steps[None, :], steps[-1])  # not shape[1]: ONNX would fix it
            valid = steps[None, :] < lengths[:, None]
            x = torch.where(valid[:, :, None, None], _gather_frames(x, index), nan)
        if spec.normalize:
            x = (x - shift[:, None, :, None]) / scale[:, None, None, None]
        if spec.canonical_hand:
            # about the body centre or the image centre
            sign = x.new_tensor([-1.0, 1.0, 1.0][: spec.dims])[:, None]
            offset = x.new_tensor([0.0 if spec.normalize else 1.0, 0.0, 0.0][: spec.dims])[:, None]
            left = self._left_dominant(hands)
            x = torch.where(left[:, None, None, None], x[..., self.mirror_points] * sign + offset, x)
        return self._features(x.transpose(2, 3)), valid  # points before coordinates: gathers copy (x, y, z) rows

    def _fill_hand_gaps(self, hands: Tensor, steps: Tensor) -> Tensor:
        """Linear interpolation over interior gaps of at most `max_gap` frames in which a hand is missing.

        A fillable gap's neighbours lie within `max_gap` frames, so the previous/next seen frame is looked
        for only that far (masked max/min over a (T, max_gap) window; ONNX has no cumulative max).
        """
        gap = self.spec.max_gap
        shift = torch.arange(1, gap + 1, device=hands.device)
        back, ahead = steps[:, None] - shift[None, :], steps[:, None] + shift[None, :]  # (T, G)
        last = steps[-1]  # not shape[1]: ONNX would fix it
        back_ok, ahead_ok = (back >= 0)[..., None], (ahead <= last)[..., None]
        back, ahead = back.clamp(min=0), torch.minimum(ahead, last)
        seen = _seen(hands, (2, 4))  # (B, T, 2); padding is never seen
        prev = torch.where(back_ok & seen[:, back], back[..., None].float(), hands.new_tensor(-1.0)).amax(2)
        nxt = torch.where(ahead_ok & seen[:, ahead], ahead[..., None].float(), hands.new_tensor(1e9)).amin(2)
        fill = ~seen & (prev >= 0) & (nxt - prev - 1 <= gap)  # (B, T, 2); no next seen: nxt - prev is huge

        def at(frames: Tensor) -> Tensor:  # each hand at its own frames (B, T, 2)
            index = frames.long()[:, :, None, :, None].expand(-1, -1, self.spec.dims, 2, HAND_POINTS)
            return torch.gather(hands, 1, index)

        a, b = at(prev.clamp(min=0)), at(torch.minimum(nxt, last.float()))
        w = ((steps.float()[None, :, None] - prev) / (nxt - prev).clamp(min=1.0))[:, :, None, :, None]
        return torch.where(fill[:, :, None, :, None], a + (b - a) * w, hands)

    def _body_frame(self, shoulders: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Shoulders (B, T, 2 sides, 2 coordinates) -> shift (B, D), scale (B,), has_pose (B,).

        Centre = mean shoulder midpoint, scale = mean shoulder width (x, y), over the frames where both
        shoulders were seen; z is only scaled. Without a pose: shift 0, scale 1.
        """
        left, right = shoulders.unbind(2)  # (B, T, 2) each
        width = (left - right).norm(dim=-1)  # (B, T), NaN unless both shoulders were seen
        ok = width == width
        count = ok.float().sum(1)
        mid = torch.where(ok[..., None], (left + right) / 2, shoulders.new_tensor(0.0)).sum(1)  # (B, 2)
        width = torch.where(ok, width, shoulders.new_tensor(0.0)).sum(1)
        has_pose = count > 0
        centre = mid / count.clamp(min=1.0)[:, None]  # 0 without a pose
        scale = torch.where(has_pose, width / count.clamp(min=1.0), shoulders.new_tensor(1.0)).clamp(min=1e-6)
        shift = centre @ shoulders.new_tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[:, : self.spec.dims]
        return shift, scale, has_pose

    @staticmethod
    def _trim(hands: Tensor, lengths: Tensor, steps: Tensor) -> tuple[Tensor, Tensor]:
        """(first frame, length) of each sequence from its first frame with a hand seen to its last one.

        Sequences without any hand are kept whole.
        """
        wrists = hands[:, :, 0, :, 0]  # (B, T, 2); NaN past each length
        active = (wrists == wrists).any(-1)  # (B, T)
        anywhere = active.any(1)
        first = torch.where(active, steps, steps.new_tensor(1 << 40)).amin(1)  # not shape[1]: ONNX would fix it
        last = torch.where(active, steps, steps.new_tensor(-1)).amax(1)
        first = torch.where(anywhere, first, torch.zeros_like(first))
        return first, torch.where(anywhere, last - first + 1, lengths)

    @staticmethod
    def _left_dominant(hands: Tensor) -> Tensor:
        """(B,) True where the left hand travels farther (its centre, summed over frames in which it is seen);
        on a tie (e.g. neither moves) where it is seen in more frames.

        Travel counts presence too: a hand that is missing or resting adds nothing. In one-handed signs
        this finds the signing hand; in two-handed ones the more active hand, so the same sign maps to
        the same features whichever hand leads. Near-symmetric signs may go either way, which matters
        little because they look alike mirrored. Measured in image coordinates: normalising scales both
        hands' travel alike.
        """
        centre = hands[:, :, :2].mean(-1)  # (B, T, 2 coordinates, 2 hands); NaN unless the hand is seen
        seen = _seen(centre, 2).sum(1)  # (B, 2)
        step = (centre[:, 1:] - centre[:, :-1]).norm(dim=2)  # (B, T - 1, 2)
        travel = _nan_to_zero(step).sum(1)
        return (travel[:, 0] > travel[:, 1]) | ((travel[:, 0] == travel[:, 1]) & (seen[:, 0] > seen[:, 1]))

    def _features(self, x: Tensor) -> Tensor:
        """(B, T', points, D) positions with NaN -> (B, T', F) finite features, zero where missing."""
        spec = self.spec
        extra = []
        if spec.hand_shape or spec.distances or spec.hand_frame:
            wrists = x[:, :, [0, HAND_POINTS]][..., :2]  # gather, then slice: the slice copies 2 points only
            knuckles = x[:, :, [_HAND_MIDDLE_MCP, HAND_POINTS + _HAND_MIDDLE_MCP]][..., :2]
            size = (knuckles - wrists).norm(dim=3, keepdim=True).clamp(min=1e-6)  # (B, T', 2, 1)
        if spec.hand_frame:  # one palm size per hand and sequence: steady where the hand turns or blurs
            seen = size == size
            count = seen.float().sum(1, keepdim=True)
            palm = torch.where(seen, size, size.new_tensor(0.0)).sum(1, keepdim=True) / count.clamp(min=1.0)
            size = torch.where(count > 0, palm, size.new_tensor(1.0)).clamp(min=1e-6)  # (B, 1, 2, 1)
            points = [x[:, :, self.frame_points]]
        else:
            points = [x]
        if spec.hand_shape or spec.hand_frame:
            rel = x[:, :, self.shape_points] - x[:, :, self.shape_wrists]
            points.append(rel / size[:, :, self.shape_hand])
        if spec.distances:
            dist = (x[:, :, self.dist_first] - x[:, :, self.dist_second]).norm(dim=3)
            divisor = torch.cat([size[..., 0].expand(-1, dist.shape[1], -1), torch.ones_like(dist[:, :, :1])], dim=-1)
            extra.append(dist / divisor[..., self.dist_divide])
        moving = torch.cat(points, dim=2) if spec.hand_frame else x
        lags = ([1] if spec.velocity else []) + ([2] if spec.lag2 else [])
        for lag in lags:  # the first frames difference against the first frame: 0, not missing
            points.append(moving - torch.cat([moving[:, :1].expand(-1, lag, -1, -1), moving[:, :-lag]], dim=1))
        presence = _seen(x, 3).float() @ self.part_mean
        flat = torch.flatten(torch.cat(points, dim=2), 2)  # point-major, as (x, y[, z]) per point
        return _nan_to_zero(torch.cat([flat, *extra, presence], dim=-1))


@functools.lru_cache(maxsize=8)
def _extractor(spec: FeatureSpec) -> FeatureExtractor:
    return FeatureExtractor(spec).eval()


def featurize(array: np.ndarray, spec: FeatureSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One landmark sequence (T, 543, 3) -> (features (T', F) float32, valid mask (T',) bool)."""
    array = validate(array)
    with torch.no_grad():
        features, valid = _extractor(spec or FeatureSpec())(
            torch.from_numpy(np.ascontiguousarray(array))[None], torch.tensor([len(array)]))
    return features[0].numpy(), valid[0].numpy()
