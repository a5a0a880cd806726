"""Seeded augmentations of one landmark array (T, 543, 3), MediaPipe image coordinates, NaN = missing.

Every transform is a callable `t(x, rng) -> array` that draws all its randomness from `rng`, so a
seed reproduces an augmented epoch exactly, and never changes its input in place. Missing points
stay missing; only `HandDrop` makes new ones. Spatial transforms keep the shape; temporal ones
change the number of frames (never below 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from signrec import SignrecError
from signrec.landmarks import PARTS, POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER
from signrec.model.features import mirror, resample


class Transform(Protocol):
    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise SignrecError(f"augmentation probability must be in [0, 1], got {p}")


def _check_range(name: str, low: float, high: float, minimum: float = -math.inf) -> None:
    if not minimum <= low <= high:
        raise SignrecError(f"{name}: need {minimum} <= low <= high, got ({low}, {high})")


@dataclass(frozen=True)
class RandomTransform:
    """Applies `apply` with probability `p`; one draw from `rng` decides, whatever p is."""

    p: float = field(default=0.5, kw_only=True)

    def __post_init__(self) -> None:
        _check_p(self.p)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return x
        return self.apply(x, rng)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def body_centre(x: np.ndarray) -> np.ndarray:
    """(x, y) about which to scale and rotate: the mean shoulder midpoint, else the mean of all points seen."""
    shoulders = x[:, [POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER], :2]
    both = np.isfinite(shoulders).all(axis=(1, 2))
    if both.any():
        return shoulders[both].mean(axis=(0, 1))
    seen = x[..., :2][np.isfinite(x[..., :2]).all(-1)]
    return seen.mean(0) if len(seen) else np.array([0.5, 0.5], dtype=x.dtype)


def _affine(x: np.ndarray, matrix: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """x-y of every point -> matrix @ (p - centre) + centre; z unchanged. NaN stays NaN."""
    out = x.copy()
    out[..., :2] = (x[..., :2] - centre) @ matrix.T.astype(x.dtype) + centre
    return out


@dataclass(frozen=True)
class Scale(RandomTransform):
    """Zoom about the body centre (a signer nearer or farther); z scales with x and y."""

    low: float = 0.85
    high: float = 1.15

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("Scale", self.low, self.high, minimum=1e-3)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = rng.uniform(self.low, self.high)
        out = _affine(x, np.eye(2) * factor, body_centre(x))
        out[..., 2] *= factor
        return out


@dataclass(frozen=True)
class Rotate(RandomTransform):
    """Rotate in the image plane about the body centre by up to `degrees` either way (a tilted camera)."""

    degrees: float = 15.0

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        angle = math.radians(rng.uniform(-self.degrees, self.degrees))
        c, s = math.cos(angle), math.sin(angle)
        return _affine(x, np.array([[c, -s], [s, c]]), body_centre(x))


@dataclass(frozen=True)
class Shear(RandomTransform):
    """Horizontal or vertical shear about the body centre by up to `amount` (a camera seen at an angle)."""

    amount: float = 0.15

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = rng.uniform(-self.amount, self.amount)
        matrix = np.array([[1.0, k], [0.0, 1.0]]) if rng.random() < 0.5 else np.array([[1.0, 0.0], [k, 1.0]])
        return _affine(x, matrix, body_centre(x))


@dataclass(frozen=True)
class Shift(RandomTransform):
    """Translate x and y by up to `amount` of the image (the signer elsewhere in the frame)."""

    amount: float = 0.05

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = x.copy()
        out[..., :2] += rng.uniform(-self.amount, self.amount, size=2).astype(x.dtype)
        return out


def resample_frames(x: np.ndarray, frames: int) -> np.ndarray:
    """(T, 543, 3) -> (frames, 543, 3), linear in time; the featurisation's resampling, so one rule for NaN."""
    with torch.no_grad():
        out, _ = resample(torch.from_numpy(np.ascontiguousarray(x))[None], torch.tensor([len(x)]), frames)
    return out[0].numpy()


@dataclass(frozen=True)
class Speed(RandomTransform):
    """Sign faster or slower: resample to T / factor frames, factor drawn log-uniformly in [low, high]."""

    low: float = 0.75
    high: float = 1.33

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("Speed", self.low, self.high, minimum=1e-3)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return resample_frames(x, max(1, round(len(x) / factor)))


@dataclass(frozen=True)
class TemporalCrop(RandomTransform):
    """Keep a random contiguous window of at least `min_fraction` of the frames (a late start, an early stop)."""

    min_fraction: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("TemporalCrop", self.min_fraction, 1.0, minimum=1e-3)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        length = max(1, math.ceil(rng.uniform(self.min_fraction, 1.0) * len(x)))
        start = int(rng.integers(0, len(x) - length + 1))
        return x[start:start + length].copy()


@dataclass(frozen=True)
class FrameDrop(RandomTransform):
    """Delete each frame with probability `rate` (a stuttering camera); at least one frame survives."""

    rate: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_p(self.rate)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        keep = rng.random(len(x)) >= self.rate
        if not keep.any():
            keep[rng.integers(len(x))] = True
        return x[keep].copy()


@dataclass(frozen=True)
class HandDrop(RandomTransform):
    """Mark one hand missing for a random run of up to `max_fraction` of the frames (a detector miss)."""

    max_fraction: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_range("HandDrop", 0.0, self.max_fraction, minimum=0.0)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        hand = PARTS["left_hand"] if rng.random() < 0.5 else PARTS["right_hand"]
        length = int(rng.integers(1, max(1, math.floor(self.max_fraction * len(x))) + 1))
        start = int(rng.integers(0, len(x) - length + 1))
        out = x.copy()
        out[start:start + length, hand] = np.nan
        return out


@dataclass(frozen=True)
class Mirror(RandomTransform):
    """Flip the video horizontally: x -> 1 - x and left/right swapped (`features.mirror`)."""

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return mirror(x, 0.5)


@dataclass(frozen=True)
class Compose(RandomTransform):
    """Apply `transforms` in order (each with its own p), the whole chain with probability `p`."""

    transforms: Sequence[Transform] = field(default_factory=tuple)
    p: float = field(default=1.0, kw_only=True)

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for transform in self.transforms:
            x = transform(x, rng)
        return x


@dataclass(frozen=True)
class OneOf(RandomTransform):
    """With probability `p`, apply one of `transforms`, chosen by `weights` (equal if None).

    The chosen transform still applies its own p; give members p=1 for "always one of these".
    """

    transforms: Sequence[Transform] = field(default_factory=tuple)
    p: float = field(default=1.0, kw_only=True)
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.transforms:
            raise SignrecError("OneOf needs at least one transform")
        if self.weights is not None and (len(self.weights) != len(self.transforms) or min(self.weights) < 0
                                         or sum(self.weights) <= 0):
            raise SignrecError(f"OneOf weights must be one non-negative number per transform, got {self.weights}")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        weights = np.ones(len(self.transforms)) if self.weights is None else np.asarray(self.weights, float)
        return self.transforms[int(rng.choice(len(self.transforms), p=weights / weights.sum()))](x, rng)


def default_augmentation() -> Compose:
    """What training uses unless told otherwise: mild geometry, tempo and detector-failure noise.

    Mirror is included for specs without handedness canonicalisation; with it, the features undo
    the flip and only the geometry noise remains.
    """
    return Compose([
        Scale(p=0.5),
        OneOf([Rotate(p=1.0), Shear(p=1.0)], p=0.5),
        Shift(p=0.5),
        OneOf([Speed(p=1.0), TemporalCrop(p=1.0), FrameDrop(p=1.0)], p=0.5),
        HandDrop(p=0.2),
        Mirror(p=0.5),
    ])
