"""Property-based tests of every landmark reader and importer (issue 20, point 11).

Whatever a file holds, reading it ends in a result of the documented shape or in a SignrecError whose message
names the file; never another exception, never a hang.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from signrec import SignrecError, landmarks
from signrec.landmarks import formats
from signrec.landmarks.dataset import read_labels
from strategies import SPECIAL_FLOATS, any_arrays, damaged_npy, landmark_arrays, npy_bytes


def _outcome(call, path: Path):
    """Run `call`; a SignrecError must name `path`. Returns the result or None."""
    try:
        return call()
    except SignrecError as exc:
        assert str(path) in str(exc) or path.name in str(exc), f"error does not name the file: {exc}"
        assert "\n" not in str(exc).strip() or "Traceback" not in str(exc)
        return None


def _tmpdir(scratch: Path) -> Path:
    """A fresh folder per example (pytest's tmp_path is shared by all examples of one test)."""
    return Path(tempfile.mkdtemp(dir=scratch))


# --- labels.csv -----------------------------------------------------------------------------------------------

CSV_TEXT = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(st.lists(st.text(max_size=10), max_size=5), max_size=6).map(
        lambda rows: "\n".join(",".join(r) for r in [["path", "label", "signer"], *rows]).encode("utf-8", "replace")),
    st.sampled_from([b"path,label\n" + b"a" * 200_000 + b",x\n", b"path,label\n\x00,\x00\n", b"\xef\xbb\xbf",
                     b"path,label\na.npy,\"unclosed\n", b"path,label\n\xff\xfe,x\n"]),
)


@given(CSV_TEXT)
def test_read_labels_any_bytes(scratch: Path, content: bytes) -> None:
    path = _tmpdir(scratch) / "labels.csv"
    path.write_bytes(content)
    samples = _outcome(lambda: read_labels(path), path)
    if samples is not None:
        assert samples and all(s.path.is_absolute() and s.label for s in samples)


def test_read_labels_undecodable_names_file(tmp_path: Path) -> None:
    """Regression: bytes that are not UTF-8 raised UnicodeDecodeError instead of a DatasetError."""
    path = tmp_path / "labels.csv"
    path.write_bytes(b"path,label\n\xff\xfe.npy,x\n")
    with pytest.raises(SignrecError, match="labels.csv.*UTF-8"):
        read_labels(path)


def test_read_labels_huge_field_names_file(tmp_path: Path) -> None:
    """Regression: a field over the csv module's limit raised _csv.Error."""
    path = tmp_path / "labels.csv"
    path.write_text("path,label\n" + "a" * 200_000 + ",x\n")
    with pytest.raises(SignrecError, match="labels.csv"):
        read_labels(path)


# --- .npy landmark files ------------------------------------------------------------------------------------

@given(st.one_of(any_arrays().map(npy_bytes), damaged_npy(), landmark_arrays().map(npy_bytes)))
def test_load_npy_any_content(scratch: Path, content: bytes) -> None:
    path = _tmpdir(scratch) / "clip.npy"
    path.write_bytes(content)
    array = _outcome(lambda: landmarks.load(path), path)
    if array is not None:
        assert array.dtype == np.float32 and array.ndim == 3 and array.shape[1:] == (543, 3) and len(array) > 0


def test_npy_header_python_can_not_tokenize(tmp_path: Path) -> None:
    """Regression (found by the property above in a fresh clone): a header dict cut off inside a tuple made NumPy's
    header parser raise tokenize.TokenError, which escaped as a traceback."""
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,\n"
    header += b" " * (53 - len(header)) + b"\n"
    path = tmp_path / "clip.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    with pytest.raises(landmarks.LandmarkError, match="clip.npy: not a readable .npy file"):
        landmarks.load(path)


# --- MP_Data ------------------------------------------------------------------------------------------------

@given(st.lists(st.one_of(any_arrays(), hnp.arrays(np.float64, 1662, elements=SPECIAL_FLOATS)), min_size=0,
                max_size=3))
def test_mpdata_sequence_any_frames(scratch: Path, frames: list[np.ndarray]) -> None:
    folder = _tmpdir(scratch) / "hello" / "0"
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        (folder / f"{i}.npy").write_bytes(npy_bytes(frame))
    array = _outcome(lambda: formats.read_mpdata_sequence(folder), folder)
    if array is not None:
        assert array.shape == (len(frames), 543, 3) and array.dtype == np.float32


@given(any_arrays())
def test_from_mpdata_frames_any_array(frames: np.ndarray) -> None:
    try:
        out = formats.from_mpdata_frames(frames, "x.npy")
    except SignrecError as exc:
        assert "x.npy" in str(exc)
    else:
        assert out.shape == (len(frames), 543, 3)


# --- Kaggle parquet -----------------------------------------------------------------------------------------

KAGGLE_TYPES = st.sampled_from(["face", "left_hand", "pose", "right_hand", "hand", ""])
COLUMN_VALUES = {
    "frame": st.one_of(st.integers(-5, 10**9), st.floats(), st.text(max_size=3), st.none()),
    "type": st.one_of(KAGGLE_TYPES, st.integers(0, 3), st.none()),
    "landmark_index": st.one_of(st.integers(-2, 600), st.floats(), st.none()),
    "x": st.one_of(st.floats(width=32), SPECIAL_FLOATS, st.text(max_size=2), st.none()),
}


@st.composite
def kaggle_tables(draw: st.DrawFn) -> pd.DataFrame:
    """Long tables like Kaggle ISLR's, with columns of the wrong type, missing or extra, and odd values."""
    n = draw(st.integers(0, 12))
    columns = draw(st.lists(st.sampled_from(["frame", "type", "landmark_index", "x", "y", "z", "row_id"]),
                            unique=True, min_size=0, max_size=7))
    if draw(st.booleans()):
        columns = ["frame", "type", "landmark_index", "x", "y", "z"]
    data = {}
    for name in columns:
        values = COLUMN_VALUES.get(name, COLUMN_VALUES["x"])
        data[name] = draw(st.lists(values, min_size=n, max_size=n))
    table = pd.DataFrame(data)
    for name in columns:  # one type per column, as parquet needs: mixed columns become text
        if table[name].map(type).nunique() > 1:
            table[name] = table[name].astype(str)
    return table


@given(st.one_of(kaggle_tables(), st.binary(max_size=200)))
def test_kaggle_parquet_any_table(scratch: Path, table: pd.DataFrame | bytes) -> None:
    path = _tmpdir(scratch) / "1.parquet"
    if isinstance(table, bytes):
        path.write_bytes(table)
    else:
        try:
            table.to_parquet(path)
        except Exception:  # a table pyarrow itself can not write is no test case
            return
    array = _outcome(lambda: formats.read_kaggle_parquet(path), path)
    if array is not None:
        assert array.ndim == 3 and array.shape[1:] == (543, 3) and array.dtype == np.float32


def test_kaggle_fractional_index_names_file(tmp_path: Path) -> None:
    """Regression: a NaN or fractional landmark_index was cast to an integer index (IndexError or a wrong point)."""
    path = tmp_path / "1.parquet"
    pd.DataFrame({"frame": [0], "type": ["pose"], "landmark_index": [float("nan")], "x": [0.1], "y": [0.2],
                  "z": [0.0]}).to_parquet(path)
    with pytest.raises(SignrecError, match="1.parquet.*landmark_index"):
        formats.read_kaggle_parquet(path)


@given(st.one_of(st.binary(max_size=200),
                 st.lists(st.lists(st.text(max_size=6), min_size=4, max_size=4), max_size=4).map(
                     lambda rows: _csv(["path", "participant_id", "sequence_id", "sign"], rows))))
def test_kaggle_index_any_content(scratch: Path, content: bytes) -> None:
    path = _tmpdir(scratch) / "train.csv"
    path.write_bytes(content)
    items = _outcome(lambda: list(formats.IMPORTERS["kaggle"](path)), path)
    assert items is None or isinstance(items, list)


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([header, *rows])
    return buffer.getvalue().encode("utf-8", "surrogatepass")


# --- hands-only arrays --------------------------------------------------------------------------------------

@given(st.one_of(any_arrays(), hnp.arrays(np.float32, st.tuples(st.sampled_from([0, 1, 5]), st.just(2), st.just(21),
                                                                 st.just(3)), elements=SPECIAL_FLOATS)))
def test_read_hands_any_array(scratch: Path, array: np.ndarray) -> None:
    path = _tmpdir(scratch) / "seq.npy"
    path.write_bytes(npy_bytes(array))
    out = _outcome(lambda: formats.read_hands(path), path)
    if out is not None:
        assert out.shape == (len(array), 543, 3) and out.dtype == np.float32


@pytest.mark.parametrize("fmt", sorted(formats.IMPORTERS))
def test_import_dataset_empty_or_missing_source(fmt: str, tmp_path: Path) -> None:
    """A source with nothing in it is refused in one sentence that names it."""
    (tmp_path / "src").mkdir()
    for src in (tmp_path / "src", tmp_path / "missing"):
        with pytest.raises(SignrecError, match=str(src.name)):
            formats.import_dataset(fmt, src, tmp_path / "out", progress=False)
