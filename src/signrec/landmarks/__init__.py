"""Layer 1, landmarks: the core data type and everything that reads or writes it without a video.

`signrec.landmarks` itself is the array contract (layout.py): float32 (frames, 543, 3), NaN for missing.
Beside it: labelled datasets (dataset.py), the landmark store that opens one (store.py), the public-data
registry (registry.py) and converters from and to other formats (formats.py).
"""

from signrec.landmarks.layout import (
    LAYOUT,
    MAX_ABS,
    N_CHANNELS,
    N_LANDMARKS,
    PARTS,
    POSE_LEFT_SHOULDER,
    POSE_LEFT_WRIST,
    POSE_NOSE,
    POSE_RIGHT_SHOULDER,
    POSE_RIGHT_WRIST,
    LandmarkError,
    check_values,
    empty,
    load,
    part,
    presence,
    read_npy,
    require_usable,
    save,
    validate,
)

__all__ = ["LAYOUT", "MAX_ABS", "N_CHANNELS", "N_LANDMARKS", "PARTS", "POSE_LEFT_SHOULDER", "POSE_LEFT_WRIST",
           "POSE_NOSE", "POSE_RIGHT_SHOULDER", "POSE_RIGHT_WRIST", "LandmarkError", "check_values", "empty", "load",
           "part", "presence", "read_npy", "require_usable", "save", "validate"]
