"""The landmark array: the one data type every stage reads and writes.

A video becomes a float32 array of shape (frames, 543, 3): MediaPipe Holistic's
pose (33), face (468), left hand (21) and right hand (21) points, each (x, y, z) in
MediaPipe's normalised image coordinates. A part that was not detected in a frame is
NaN, never zero, so that "missing" can not be mistaken for "at the image corner".
"""

from __future__ import annotations

import math
import os
import tokenize
from pathlib import Path
from typing import BinaryIO

import numpy as np

from signrec import SignrecError
from signrec.files import atomic_path

LAYOUT = "holistic-543-xyz"
"""Name saved with datasets and models; loading refuses arrays of another layout."""

PARTS: dict[str, slice] = {
    "pose": slice(0, 33),
    "face": slice(33, 501),
    "left_hand": slice(501, 522),
    "right_hand": slice(522, 543),
}
N_LANDMARKS = 543
N_CHANNELS = 3

LANDMARK_MODELS: dict[str, object] = {"face": True, "hand_model": "full"}
"""The MediaPipe models that make the landmarks, with their defaults (Holistic as the wheel ships it). A dataset
and a model record which made theirs: landmarks of other models differ, so a model is fed only its own kind."""

# Pose indices used by normalisation and by the compact feature subset (MediaPipe Pose numbering).
POSE_NOSE = 0
POSE_LEFT_SHOULDER = 11
POSE_RIGHT_SHOULDER = 12
POSE_LEFT_WRIST = 15
POSE_RIGHT_WRIST = 16


MAX_ABS = 100.0
"""Largest coordinate accepted. Landmarks are normalised image coordinates (0-1, a little beyond for points out of
the picture; imported body-frame data a few units): larger values are a mistake, and values near float32's limit
overflow inside the features and give NaN probabilities."""


class LandmarkError(SignrecError):
    """A landmark file that can not be used, with the file named in the message."""


def empty(frames: int) -> np.ndarray:
    """An all-missing array for `frames` frames."""
    return np.full((frames, N_LANDMARKS, N_CHANNELS), np.nan, dtype=np.float32)


def validate(array: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """Return `array` as float32 (T, 543, 3) or raise LandmarkError naming `source`."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[1:] != (N_LANDMARKS, N_CHANNELS):
        raise LandmarkError(
            f"{source}: expected landmarks of shape (frames, {N_LANDMARKS}, {N_CHANNELS}) "
            f"[{LAYOUT}], got {array.shape}. Convert other layouts with `signrec import`."
        )
    if array.shape[0] == 0:
        raise LandmarkError(f"{source}: has no frames")
    if not np.issubdtype(array.dtype, np.floating):
        raise LandmarkError(f"{source}: expected floating point values, got {array.dtype}")
    array = array.astype(np.float32, copy=False)
    check_values(array, source)
    return array


def check_values(array: np.ndarray, source: str | os.PathLike = "<array>") -> None:
    """Refuse infinite values and values larger than MAX_ABS, naming the first one; NaN (missing) is fine."""
    with np.errstate(invalid="ignore"):
        bad = np.abs(array) > MAX_ABS  # False for NaN, True for inf
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = array[where]
        what = "an infinite value" if np.isinf(value) else f"the value {value:g}"
        at = f" at frame {where[0]}, point {where[1]}" if len(where) == 3 else f" at point {where[0]}"
        raise LandmarkError(f"{source}: {what}{at}: landmarks are normalised image coordinates, at most {MAX_ABS:g} "
                            "in size; a point that was not detected is NaN (null in JSON)")


def require_usable(array: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """`array`, unless nothing was detected in any frame: every command and endpoint that classifies refuses such
    a sequence rather than answer with what the model guesses from nothing."""
    if np.isnan(array).all():
        raise LandmarkError(f"{source}: no usable frames: no body part was detected in any of its {len(array)} "
                            "frames")
    return array


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Any `.npy` array, without pickles; a missing or unreadable file is a LandmarkError naming it. A file that
    is no .npy at all (a video, a text) is called that: NumPy alone would report it as a pickle it may not load."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(len(np.lib.format.MAGIC_PREFIX)) != np.lib.format.MAGIC_PREFIX:
                raise LandmarkError(f"{path}: not a landmark .npy file (no NumPy .npy header; "
                                    f"{path.stat().st_size} bytes)")
            _check_size(path, fh)
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except FileNotFoundError:
        raise LandmarkError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:
        # NumPy parses the header's text with Python's tokenizer: a damaged one raises its errors too
        raise LandmarkError(f"{path}: not a readable .npy file ({exc})") from None


def _check_size(path: Path, fh: BinaryIO) -> None:
    """Refuse a header that promises more data than the file holds before NumPy allocates it: a damaged or hostile
    header of shape (10**15, 543, 3) would otherwise ask for petabytes (MemoryError) or for all the RAM there is."""
    fh.seek(0)
    version = np.lib.format.read_magic(fh)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read_header(fh)
    needed = math.prod(shape) * dtype.itemsize
    available = os.fstat(fh.fileno()).st_size - fh.tell()
    if not dtype.hasobject and needed > available:
        raise LandmarkError(f"{path}: truncated or damaged .npy file (its header promises {needed} bytes of "
                            f"{dtype} {shape}, the file holds {available})")


def load(path: str | os.PathLike) -> np.ndarray:
    """Load and validate one landmark `.npy` file."""
    return validate(read_npy(path), path)


def save(path: str | os.PathLike, array: np.ndarray) -> None:
    """Validate and write atomically."""
    array = validate(array, path)
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def part(array: np.ndarray, name: str) -> np.ndarray:
    """The (T, n, 3) view of one part: 'pose', 'face', 'left_hand' or 'right_hand'."""
    return array[:, PARTS[name]]


def presence(array: np.ndarray) -> dict[str, float]:
    """Fraction of frames in which each part was detected."""
    return {name: float(np.mean(~np.isnan(array[:, sl, 0]).all(axis=1))) if len(array) else 0.0
            for name, sl in PARTS.items()}
