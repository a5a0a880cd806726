"""Landmarks -> model input: the featurisation every stage shares.

`FeatureExtractor` is a torch module without weights, written only in ops that
`torch.onnx.export` can trace (no Python branching on tensor values), so the very same
code runs in training, in the server and inside the exported ONNX graph. `FeatureSpec`
describes it and is saved with every model; a model never sees features made another way.

Per sequence, in order:
1. frames past `lengths` are dropped (set missing);
2. short gaps of a missing hand (<= `max_gap` frames) are filled by linear interpolation;
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
   presence. Missing values become 0 only beside a presence flag that says they are missing.

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
from signrec.landmarks import N_LANDMARKS, PARTS, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER, validate

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
    frames: int = 32
    """Output length: resample every sequence to this many frames; 0 keeps each sequence's own length."""
    use_z: bool = True
    """Include MediaPipe's z (depth). Noisy for the body, but it tells apart hand shapes that look alike in
    x and y; on by default since version 2, whose gain on unseen signers was measured with it."""
    normalize: bool = True
    """Body-centred coordinates (shoulder midpoint, shoulder width); else MediaPipe image coordinates."""
    hand_shape: bool = True
    """Add each hand's points relative to its wrist, divided by hand size: shape independent of position."""
    velocity: bool = True
    """Add frame-to-frame differences of the positions."""
    max_gap: int = 4
    """Fill a missing hand by linear interpolation across gaps of at most this many frames (0: never)."""
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
    def n_features(self) -> int:
        """Length F of each frame's feature vector."""
        positions = self.n_points * self.dims
        hand_shape = 2 * (HAND_POINTS - 1) * self.dims if self.hand_shape else 0
        velocity = positions if self.velocity else 0
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
    shape = index.shape + x.shape[2:]
    index = index.reshape(index.shape + (1,) * (x.dim() - 2)).expand(shape)
    return torch.gather(x, 1, index)


def resample(x: Tensor, lengths: Tensor, frames: int) -> tuple[Tensor, Tensor]:
    """Resample each sequence's first `lengths` frames of x (B, T, ...) to `frames` frames, linearly in time.

    Where one of the two neighbouring source frames is missing (NaN), the nearer one is used, so a
    value is missing exactly when its nearest source frame had it missing. Returns (B, frames, ...)
    and the validity mask (B, frames) (False only for empty sequences).
    """
    last = (lengths.float() - 1).clamp(min=0.0)[:, None]  # (B, 1)
    j = torch.arange(frames, device=x.device).float()[None, :]
    pos = j * last / (frames - 1) if frames > 1 else last / 2 + j
    i0 = pos.floor()
    i1 = torch.minimum(i0 + 1, last)
    w = (pos - i0).reshape(pos.shape + (1,) * (x.dim() - 2))
    a, b = _gather_frames(x, i0.long()), _gather_frames(x, i1.long())
    both = torch.isfinite(a) & torch.isfinite(b)
    out = torch.where(both, a + (b - a) * w, torch.where(w < 0.5, a, b))
    return out, (lengths > 0)[:, None].expand(-1, frames)


class FeatureExtractor(torch.nn.Module):
    """(landmarks (B, T, 543, 3) NaN = missing, lengths (B,)) -> (features (B, T', F), valid (B, T')).

    Every step works on the subset's points only (plus the shoulders when normalising): mirroring never
    moves a point out of a subset, gap filling touches only the hands and normalisation reads only the
    shoulders, so the result is that of running the steps on all 543 points, at a fraction of the cost.
    """

    def __init__(self, spec: FeatureSpec | None = None):
        super().__init__()
        self.spec = spec or FeatureSpec()
        points = subset_indices(self.spec.subset).tolist()
        self.n_subset = len(points)
        shoulders = [_POSE + POSE_LEFT_SHOULDER, _POSE + POSE_RIGHT_SHOULDER]
        points += [p for p in shoulders if self.spec.normalize and p not in points]
        local = {p: k for k, p in enumerate(points)}
        self.shoulders = [local.get(p, -1) for p in shoulders]  # -1: not gathered (normalize is off)
        self.anchors = [] if self.spec.subset == "hands" else [local[_FACE + i] for i in _FACE_ANCHORS]
        self.register_buffer("points", torch.as_tensor(points), persistent=False)
        self.register_buffer("mirror_points", torch.as_tensor([local[MIRROR_INDEX[p]] for p in points]),
                             persistent=False)

    @property
    def n_features(self) -> int:
        return self.spec.n_features

    def forward(self, landmarks: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        spec = self.spec
        # (B, T, 3, K): coordinates before points, so that per-point masks and per-coordinate constants
        # broadcast over long contiguous rows (ONNX Runtime is slow at broadcasting into a last axis of 2 or 3)
        x = landmarks[:, :, self.points].float().transpose(2, 3)  # hands first: left 0..20, right 21..41
        steps = torch.arange(x.shape[1], device=x.device)
        lengths = lengths.to(x.device).long()
        valid = steps[None, :] < lengths[:, None]
        lengths = valid.sum(1)  # a length beyond the padded array means the whole array
        x = torch.where(valid[:, :, None, None], x, x.new_tensor(float("nan")))
        if spec.max_gap > 0:
            x = self._fill_hand_gaps(x)
        x = x[:, :, : spec.dims]
        if spec.normalize:
            x = self._normalize(x, valid)
            if spec.drop_resting_hands:
                x = self._drop_resting_hands(x)
        if spec.canonical_hand:
            # about the body centre or the image centre
            offset = x.new_tensor([0.0 if spec.normalize else 1.0, 0.0, 0.0][: spec.dims])[:, None]
            flipped = x[..., self.mirror_points] * x.new_tensor([-1.0, 1.0, 1.0][: spec.dims])[:, None] + offset
            x = torch.where(self._left_dominant(x)[:, None, None, None], flipped, x)
        if spec.trim:
            x, lengths, valid = self._trim(x, valid, lengths)
        x = x[..., : self.n_subset]
        if spec.frames > 0:
            x, valid = resample(x, lengths, spec.frames)
        return self._features(x, valid), valid

    def _fill_hand_gaps(self, x: Tensor) -> Tensor:
        """Linear interpolation over interior gaps of at most `max_gap` frames in which a hand is missing.

        A fillable gap's neighbours lie within `max_gap` frames, so the previous/next seen frame is looked
        for only that far (masked max/min over a (T, max_gap) window; ONNX has no cumulative max).
        """
        steps = torch.arange(x.shape[1], device=x.device)
        shift = torch.arange(1, self.spec.max_gap + 1, device=x.device)
        back, ahead = steps[:, None] - shift[None, :], steps[:, None] + shift[None, :]  # (T, G)
        last = steps[-1]  # not shape[1]: ONNX would fix it
        back_ok, ahead_ok = back >= 0, ahead <= last
        back, ahead = back.clamp(min=0), torch.minimum(ahead, last)
        steps_f = steps.float()
        out = []
        for start in (0, HAND_POINTS):
            hand = x[..., start:start + HAND_POINTS]
            seen = torch.isfinite(hand).all(-1).all(-1)  # (B, T); padding is never seen
            prev = torch.where(back_ok & seen[:, back], back.float(), steps_f.new_tensor(-1.0)).amax(-1)
            nxt = torch.where(ahead_ok & seen[:, ahead], ahead.float(), steps_f.new_tensor(1e9)).amin(-1)
            fill = ~seen & (prev >= 0) & (nxt < 1e9) & (nxt - prev - 1 <= self.spec.max_gap)
            a = _gather_frames(hand, prev.clamp(min=0).long())
            b = _gather_frames(hand, torch.minimum(nxt, last.float()).long())
            w = ((steps_f[None, :] - prev) / (nxt - prev).clamp(min=1.0))[:, :, None, None]
            out.append(torch.where(fill[:, :, None, None], a + (b - a) * w, hand))
        return torch.cat([out[0], out[1], x[..., 2 * HAND_POINTS:]], dim=3)

    def _normalize(self, x: Tensor, valid: Tensor) -> Tensor:
        """Centre on the mean shoulder midpoint, divide by the mean shoulder width (x, y); z is only scaled."""
        left, right = x[:, :, :2, self.shoulders[0]], x[:, :, :2, self.shoulders[1]]
        ok = torch.isfinite(left).all(-1) & torch.isfinite(right).all(-1) & valid  # (B, T)
        count = ok.float().sum(1)
        mid = torch.where(ok[..., None], (left + right) / 2, x.new_tensor(0.0)).sum(1)
        width = torch.where(ok, (left - right).norm(dim=-1), x.new_tensor(0.0)).sum(1)
        has_pose = count > 0
        centre = torch.where(has_pose[:, None], mid / count.clamp(min=1.0)[:, None], x.new_tensor(0.0))
        scale = torch.where(has_pose, width / count.clamp(min=1.0), x.new_tensor(1.0)).clamp(min=1e-6)
        shift = torch.cat([centre, torch.zeros_like(centre[:, :1])], dim=1)[:, : self.spec.dims]  # (B, D)
        return (x - shift[:, None, :, None]) / scale[:, None, None, None]

    def _drop_resting_hands(self, x: Tensor) -> Tensor:
        """Mark a hand missing in frames where its wrist hangs below `RAISED_BELOW_SHOULDERS` (only with a pose)."""
        has_pose = torch.isfinite(x[:, :, 0, self.shoulders[0]]).any(1)[:, None]  # (B, 1)
        out = []
        for start in (0, HAND_POINTS):
            resting = (x[:, :, 1, start] > RAISED_BELOW_SHOULDERS) & has_pose  # (B, T)
            out.append(torch.where(resting[:, :, None, None], x.new_tensor(float("nan")),
                                   x[..., start:start + HAND_POINTS]))
        return torch.cat([out[0], out[1], x[..., 2 * HAND_POINTS:]], dim=3)

    @staticmethod
    def _trim(x: Tensor, valid: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Shift each sequence to start at its first frame with a hand seen and end at its last one.

        Sequences without any hand are kept whole. Returns x, lengths and valid, as forward has them.
        """
        active = torch.isfinite(x[:, :, 0, [0, HAND_POINTS]]).any(-1) & valid  # (B, T): a wrist seen
        steps = torch.arange(x.shape[1], device=x.device)
        anywhere = active.any(1)
        first = torch.where(active, steps, steps.new_tensor(1 << 40)).amin(1)  # not shape[1]: ONNX would fix it
        last = torch.where(active, steps, steps.new_tensor(-1)).amax(1)
        first = torch.where(anywhere, first, torch.zeros_like(first))
        lengths = torch.where(anywhere, last - first + 1, lengths)
        index = torch.minimum(first[:, None] + steps[None, :], steps[-1])  # (B, T)
        valid = steps[None, :] < lengths[:, None]
        x = torch.where(valid[:, :, None, None], _gather_frames(x, index), x.new_tensor(float("nan")))
        return x, lengths, valid

    @staticmethod
    def _left_dominant(x: Tensor) -> Tensor:
        """(B,) True where the left hand travels farther (its centre, summed over frames in which it is seen);
        on a tie (e.g. neither moves) where it is seen in more frames.

        Travel counts presence too: a hand that is missing or resting adds nothing. In one-handed signs
        this finds the signing hand; in two-handed ones the more active hand, so the same sign maps to
        the same features whichever hand leads. Near-symmetric signs may go either way, which matters
        little because they look alike mirrored.
        """
        seen, travel = [], []
        for start in (0, HAND_POINTS):
            hand = x[:, :, :2, start:start + HAND_POINTS]
            present = torch.isfinite(hand).all(-1).all(-1)
            centre = torch.where(present[..., None], hand.mean(-1), x.new_tensor(0.0))
            step = (centre[:, 1:] - centre[:, :-1]).norm(dim=-1)
            travel.append(torch.where(present[:, 1:] & present[:, :-1], step, x.new_tensor(0.0)).sum(1))
            seen.append(present.sum(1))
        return (travel[0] > travel[1]) | ((travel[0] == travel[1]) & (seen[0] > seen[1]))

    def _features(self, x: Tensor, valid: Tensor) -> Tensor:
        """(B, T', D, K) positions with NaN -> (B, T', F) finite features, zero on invalid frames."""
        spec = self.spec
        seen = torch.isfinite(x).all(2)  # (B, T', K)
        zero = x.new_tensor(0.0)
        points = [torch.where(seen[:, :, None], x, zero)]  # per point: (B, T', D, points), D before points
        if spec.hand_shape:
            for start in (0, HAND_POINTS):
                hand = x[..., start:start + HAND_POINTS]
                size = (hand[:, :, :2, _HAND_MIDDLE_MCP] - hand[:, :, :2, 0]).norm(dim=-1).clamp(min=1e-6)
                rel = (hand[..., 1:] - hand[..., :1]) / size[:, :, None, None]
                ok = seen[:, :, start + 1:start + HAND_POINTS] & seen[:, :, start:start + 1]
                points.append(torch.where(ok[:, :, None], rel, zero))
        extra = []
        if spec.distances:
            first, second = [a for a, _ in _PAIRS], [b for _, b in _PAIRS]
            for start in (0, HAND_POINTS):
                tips = x[..., [start + i for i in _TIPS]]  # (B, T', D, 6)
                size = (x[:, :, :2, start + _HAND_MIDDLE_MCP] - x[:, :, :2, start]).norm(dim=-1).clamp(min=1e-6)
                extra.append((tips[..., first] - tips[..., second]).norm(dim=2) / size[..., None])
                if self.anchors:
                    near = tips[..., :, None] - x[..., None, self.anchors]  # (B, T', D, 6, 3)
                    extra.append(torch.flatten(near.norm(dim=2), 2))
        if spec.velocity:
            prev_x = torch.cat([x[:, :1], x[:, :-1]], dim=1)
            prev_ok = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)
            ok = seen & torch.cat([seen[:, :1], seen[:, :-1]], dim=1) & (valid & prev_ok)[:, :, None]
            points.append(torch.where(ok[:, :, None], x - prev_x, zero))
        n_hand = 2 * HAND_POINTS
        groups = [(0, HAND_POINTS), (HAND_POINTS, n_hand)]
        if spec.subset != "hands":
            n_pose = len(_COMPACT_POSE) if spec.subset == "compact" else PARTS["pose"].stop
            groups += [(n_hand, n_hand + n_pose), (n_hand + n_pose, x.shape[3])]
        presence = torch.stack([seen[:, :, a:b].float().mean(-1) for a, b in groups], dim=-1)
        flat = torch.flatten(torch.cat(points, dim=3).transpose(2, 3), 2)  # point-major, as (x, y[, z]) per point
        extra = [torch.where(torch.isfinite(e), e, zero) for e in extra]
        features = torch.cat([flat, *extra, presence], dim=-1)
        return torch.where(valid[..., None], features, zero)


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
