"""Hypothesis strategies shared by the property-based tests: hostile arrays, bytes and JSON.

Every reader, importer and pure stage is fed these; the only allowed outcomes are a result or a SignrecError
whose message names what was wrong. `make test` runs few examples (profile `fast`), `make reliability` many
(`--hypothesis-profile=reliability`).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from signrec import landmarks

SPECIAL_FLOATS = st.sampled_from([float(np.float32(v)) for v in (np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38, 1e-45,
                                                                   0.0, -0.0, 0.5)])
"""Values that broke something before (issue 20: huge finite values became NaN probabilities)."""

DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_,
                          np.complex64, np.dtype("U3"), np.dtype("S2"), np.dtype("M8[s]")])
LENGTHS = st.sampled_from([0, 1, 2, 3, 10, 47])
"""Frame counts; 10 000 frames are tried separately (one example: they are slow)."""


def floats_array(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float32 arrays of `shape` drawn from ordinary coordinates mixed with NaN, inf and huge values."""
    elements = st.one_of(st.floats(-2, 2, width=32), SPECIAL_FLOATS)
    return hnp.arrays(np.float32, shape, elements=elements, fill=st.one_of(st.just(np.nan), st.floats(0, 1, width=32)))


@st.composite
def landmark_arrays(draw: st.DrawFn, lengths: st.SearchStrategy[int] = LENGTHS) -> np.ndarray:
    """(T, 543, 3) float32 with hostile values; parts missing (NaN) at random, as MediaPipe leaves them."""
    frames = draw(lengths)
    array = draw(floats_array((frames, landmarks.N_LANDMARKS, landmarks.N_CHANNELS)))
    for sl in landmarks.PARTS.values():
        if draw(st.booleans()):
            array[:, sl] = np.nan
    return array


@st.composite
def any_arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays of any small shape and of any dtype .npy can hold without pickles, near-miss shapes included."""
    shape = draw(st.one_of(
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
        st.sampled_from([(2, 543, 3), (0, 543, 3), (2, 543, 2), (2, 2, 21, 3), (0, 2, 21, 3), (1662,), (2, 1662),
                         (543, 3), (1, 543, 3, 1)])))
    dtype = draw(DTYPES)
    if np.dtype(dtype) == np.float16:
        return draw(hnp.arrays(dtype, shape, elements=st.floats(width=16)))
    if np.dtype(dtype).kind == "f":
        return draw(hnp.arrays(dtype, shape, elements=st.one_of(st.floats(-2, 2, width=32), SPECIAL_FLOATS)))
    return draw(hnp.arrays(dtype, shape))


def npy_bytes(array: np.ndarray) -> bytes:
    """The .npy file of `array`, as np.save writes it."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@st.composite
def damaged_npy(draw: st.DrawFn) -> bytes:
    """A .npy file of a plausible array, then truncated, overwritten at a random place, or its header edited."""
    data = bytearray(npy_bytes(draw(any_arrays())))
    how = draw(st.sampled_from(["truncate", "flip", "header", "random"]))
    if how == "truncate":
        return bytes(data[:draw(st.integers(0, len(data)))])
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data[at:at + 8] = draw(st.binary(min_size=1, max_size=8))
        return bytes(data)
    if how == "header":  # a header that promises a huge or odd array
        header = draw(st.sampled_from([
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 543, 3), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 543, 3), }",
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 543, 3), }",
            "{'descr': 'not a dtype', 'fortran_order': False, 'shape': (2,), }",
            "__import__('os')",
        ]))
        body = header.encode().ljust(118) + b"\n"
        return np.lib.format.MAGIC_PREFIX + b"\x01\x00" + len(body).to_bytes(2, "little") + body + bytes(data[128:])
    return draw(st.binary(max_size=300))


def json_values(max_leaves: int = 8) -> st.SearchStrategy[object]:
    """Any JSON value: what a corrupted or hand-edited JSON file may hold."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                        st.text(max_size=12))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=max_leaves)
