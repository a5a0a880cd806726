"""Property-based tests of the continuous segmenter (issue 20, point 11): any frames and any clock.

Cuts are well formed (start <= end, frame ranges inside the recording) or the input is refused with a
SignrecError; NaN, inf, huge coordinates, time going backwards and empty recordings never crash it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signrec import SignrecError
from signrec.recognize.continuous import Segmenter, StreamSettings, segments
from strategies import landmark_arrays

TIMES = st.one_of(st.floats(-10, 1e6), st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))


@given(landmark_arrays(), st.one_of(st.floats(0.5, 240), st.sampled_from([1e-9, 1e9])))
def test_segments_any_landmarks(array: np.ndarray, fps: float) -> None:
    for start, end, first, stop in segments(array, fps):
        assert start <= end and 0 <= first < stop <= len(array)


@given(st.sampled_from([0.0, -1.0, np.nan, np.inf]))
def test_segments_refuse_bad_fps(fps: float) -> None:
    """Regression: fps 0 raised ZeroDivisionError, NaN or inf gave times of NaN."""
    with pytest.raises(SignrecError, match="frame rate"):
        segments(np.full((3, 543, 3), 0.5, dtype=np.float32), fps)


@given(st.lists(st.tuples(landmark_arrays(lengths=st.just(1)), TIMES), max_size=30))
def test_segmenter_any_frames_and_clock(pushes: list[tuple[np.ndarray, float]]) -> None:
    seg = Segmenter(StreamSettings())
    cuts = [seg.push(frame[0], t) for frame, t in pushes]
    cuts.append(seg.finish())
    for cut in cuts:
        if cut is not None:
            assert cut.first <= cut.last <= cut.closed < len(pushes) + 1


def test_segments_long_recording() -> None:
    """10 000 frames (11 min at 15 fps) of a hand going up and down: cut into signs in one pass."""
    array = np.full((10_000, 543, 3), np.nan, dtype=np.float32)
    array[:, 11] = (0.6, 0.4, 0)  # shoulders
    array[:, 12] = (0.4, 0.4, 0)
    up = (np.arange(10_000) // 30) % 2 == 0
    array[up, 522:543] = (0.5, 0.45, 0)
    array[up, 522:543, 0] += np.linspace(0, 0.1, 21) * np.sin(np.arange(up.sum()))[:, None]
    cuts = segments(array, 15.0)
    assert len(cuts) > 100
