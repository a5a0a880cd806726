"""Converters between the landmark dataset and layouts people already have.

Import (`signrec import FORMAT SRC --out DIR`) writes a landmark dataset: DIR/labels.csv plus one
(T, 543, 3) float32 .npy per sequence, NaN where a part is missing. Formats:

- `mpdata`: the MediaPipe + LSTM tutorial layout MP_Data/<action>/<sequence>/<frame>.npy, one
  1662-value vector a frame: pose 33x(x, y, z, visibility), face 468x3, left hand 21x3, right hand 21x3,
  zeros where a part was not detected. Pose visibility is dropped: our layout keeps x, y, z only.
- `kaggle`: Google's Isolated Sign Language Recognition parquet (train.csv + one parquet a sequence,
  long format frame/type/landmark_index/x/y/z). Rows are placed by `type` and `landmark_index`, because
  Kaggle orders the parts face, left hand, pose, right hand and ours is pose, face, left hand, right hand.
- `hands`: a labels.csv dataset of hands-only (T, 2, 21, 3) arrays [left, right] such as LSA64's
  published landmarks. Values are kept as they are: those sets are often already centred between the
  shoulders and scaled by shoulder width, not image coordinates, and pose and face are NaN.

Export (`signrec export-mpdata DATA --out DIR`) writes the tutorial layout back, so models and notebooks
built on it can use data recorded or converted with signrec. The label is the folder name there, so a label
is made a file name valid on every system (Windows is the strictest): each character Windows forbids
(`<>:"/\\|?*`, control characters) and a leading dot (a hidden folder, which the importer skips) or a trailing
dot or space becomes `_`, and a name Windows reserves (CON, NUL, COM1, ...) gets a leading `_`. Imported back,
the label is that folder name ("What?" comes back as "What_"); the export lists each label it changed, and
refuses labels that would share a folder (also when they differ only in case, as Windows and macOS do not tell
them apart).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from signrec import SignrecError, landmarks
from signrec.landmarks.dataset import VIDEO_EXTENSIONS, Sample, read_labels, write_labels

MPDATA_SIZE = 1662
"""Values in one tutorial frame vector: 33*4 + 468*3 + 21*3 + 21*3."""

# (part, number of values per landmark) in the tutorial vector's order; the same part order as ours.
_MPDATA_PARTS = (("pose", 4), ("face", 3), ("left_hand", 3), ("right_hand", 3))
_KAGGLE_COLUMNS = ("frame", "type", "landmark_index", "x", "y", "z")
LANDMARKS_DIR = "landmarks"
"""Folder inside the import's output where the .npy files go."""


class FormatError(SignrecError):
    """A file that is not in the format it claims to be, with the file named."""


# --- pure conversions -------------------------------------------------------------------------------------

def from_mpdata_frames(frames: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """Tutorial (T, 1662) vectors -> (T, 543, 3) landmarks; a part whose values are all zero becomes NaN."""
    frames = np.asarray(frames)
    if frames.dtype.kind not in "biuf":
        raise FormatError(f"{source}: expected numbers, got values of type {frames.dtype}")
    frames = frames.astype(np.float32)
    if frames.ndim != 2 or frames.shape[1] != MPDATA_SIZE:
        raise FormatError(f"{source}: expected frames of {MPDATA_SIZE} values, got shape {frames.shape}")
    out = landmarks.empty(len(frames))
    start = 0
    for name, width in _MPDATA_PARTS:
        sl = landmarks.PARTS[name]
        n = sl.stop - sl.start
        chunk = frames[:, start:start + n * width]
        present = np.any(chunk != 0, axis=1)
        out[present, sl] = chunk.reshape(len(frames), n, width)[present, :, :3]
        start += n * width
    return out


def to_mpdata_frames(array: np.ndarray) -> np.ndarray:
    """(T, 543, 3) landmarks -> tutorial (T, 1662) vectors: zeros where missing.

    Pose visibility, which our layout does not keep, is written as 1.0 for a present point and 0 for a
    missing one, so a tutorial model sees detected points as fully visible.
    """
    array = landmarks.validate(array)
    present = ~np.isnan(array).any(axis=2)  # (T, 543)
    filled = np.where(present[..., None], array, 0.0).astype(np.float32)
    pieces = []
    for name, width in _MPDATA_PARTS:
        sl = landmarks.PARTS[name]
        values = filled[:, sl]
        if width == 4:
            values = np.concatenate([values, present[:, sl, None].astype(np.float32)], axis=2)
        pieces.append(values.reshape(len(array), -1))
    return np.concatenate(pieces, axis=1)


def from_hands(array: np.ndarray, source: str | os.PathLike = "<array>") -> np.ndarray:
    """Hands-only (T, 2, 21, 3) [left, right] -> (T, 543, 3); an all-zero hand and pose/face are NaN."""
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[1:] != (2, 21, 3) or len(array) == 0:
        raise FormatError(f"{source}: expected hands of shape (frames, 2, 21, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise FormatError(f"{source}: expected floating point values, got {array.dtype}")
    out = landmarks.empty(len(array))
    for i, name in enumerate(("left_hand", "right_hand")):
        hand = array[:, i].astype(np.float32)
        present = np.any(hand != 0, axis=(1, 2)) & ~np.isnan(hand).all(axis=(1, 2))
        out[present, landmarks.PARTS[name]] = hand[present]
    return out


def from_kaggle_table(table, source: str | os.PathLike = "<table>") -> np.ndarray:
    """A Kaggle ISLR long table (pandas DataFrame) -> (T, 543, 3), one row per distinct `frame`, sorted."""
    missing = [c for c in _KAGGLE_COLUMNS if c not in table.columns]
    if missing:
        raise FormatError(f"{source}: missing column(s) {missing}; found {list(table.columns)}")
    if table.empty:
        raise FormatError(f"{source}: no rows")
    frame_ids, frame_rows = np.unique(_numbers(table, "frame", source, whole=True), return_inverse=True)
    offsets = np.full(len(table), -1, dtype=np.int64)
    index = _numbers(table, "landmark_index", source, whole=True).astype(np.int64)
    kinds = table["type"].astype(str).to_numpy()
    for kind, sl in landmarks.PARTS.items():  # Kaggle's `type` values are our part names
        rows = kinds == kind
        if np.any((index[rows] < 0) | (index[rows] >= sl.stop - sl.start)):
            raise FormatError(f"{source}: landmark_index out of range for type {kind!r}")
        offsets[rows] = sl.start + index[rows]
    unknown = sorted(set(kinds[offsets < 0]))
    if unknown:
        raise FormatError(f"{source}: unknown landmark type(s) {unknown}; expected {list(landmarks.PARTS)}")
    out = landmarks.empty(len(frame_ids))
    out[frame_rows, offsets] = np.stack([_numbers(table, c, source) for c in "xyz"], axis=1)
    return out


def _numbers(table, column: str, source: str | os.PathLike, whole: bool = False) -> np.ndarray:
    """A column as numbers (float32, NaN for missing coordinates), or a FormatError naming the file and column:
    parquet columns may hold text or mixed types, and a fractional or missing index would silently pick a point."""
    try:
        values = np.asarray(table[column].to_numpy(), dtype=np.float64)
    except (ValueError, TypeError):
        raise FormatError(f"{source}: column {column!r} is not numeric") from None
    if whole:
        if not np.isfinite(values).all() or (values != np.round(values)).any() or np.abs(values).max() > 2**53:
            raise FormatError(f"{source}: column {column!r} must hold whole numbers (no gaps or fractions)")
        return values
    return values.astype(np.float32)


# --- readers for one source item --------------------------------------------------------------------------

def _numeric_key(path: Path) -> tuple[int, str]:
    match = re.fullmatch(r"\d+", path.stem)
    return (int(path.stem), "") if match else (-1, path.stem)


def read_mpdata_sequence(folder: str | os.PathLike) -> np.ndarray:
    """One MP_Data/<action>/<sequence> folder -> (T, 543, 3), frames sorted numerically (2 before 10)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.npy"), key=_numeric_key)
    if not files:
        raise FormatError(f"{folder}: no frame .npy files")
    numbers = [_numeric_key(f)[0] for f in files]
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers)) if numbers[0] >= 0 else []
    if missing:  # left out, the frames after it would move earlier in time
        raise FormatError(f"{folder}: frame(s) {', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}"
                          f" missing between {numbers[0]}.npy and {numbers[-1]}.npy")
    frames = []
    for f in files:
        frame = landmarks.read_npy(f)
        if frame.shape != (MPDATA_SIZE,):
            raise FormatError(f"{f}: expected {MPDATA_SIZE} values, got shape {frame.shape}")
        frames.append(frame)
    return from_mpdata_frames(np.stack(frames), folder)


def read_kaggle_parquet(path: str | os.PathLike) -> np.ndarray:
    import pyarrow.parquet as pq  # imported here: only this format needs it

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    try:
        table = pq.read_table(path, columns=list(_KAGGLE_COLUMNS)).to_pandas()
    except Exception as exc:  # pyarrow raises several types for damaged or foreign files
        raise FormatError(f"{path}: not a readable Kaggle ISLR parquet file ({type(exc).__name__}: {exc})") from None
    return from_kaggle_table(table, path)


def read_hands(path: str | os.PathLike) -> np.ndarray:
    return from_hands(landmarks.read_npy(path), path)


# --- batch import -----------------------------------------------------------------------------------------

@dataclass
class Report:
    """What a batch conversion did; `failed` lists (file, reason), `warnings` (file, note) for sequences
    converted but suspect, `renamed` the labels that export changed to make folder names."""

    converted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    out: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"out": self.out, "converted": self.converted, "failed": len(self.failed),
                "errors": [{"file": f, "error": e} for f, e in self.failed],
                "warnings": [{"file": f, "warning": w} for f, w in self.warnings],
                **({"renamed": self.renamed} if self.renamed else {})}

    def text(self, verb: str) -> str:
        lines = [f"{verb} {self.converted} sequence(s) into {self.out}; {len(self.failed)} failed"
                 + (f", {len(self.warnings)} with warnings" if self.warnings else "")]
        lines += [f"  FAILED {e}" for _f, e in self.failed]
        lines += [f"  warning {f}: {w}" for f, w in self.warnings]
        lines += [f"  label {label!r} -> folder {name!r}" for label, name in self.renamed.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Item:
    """One source sequence: how to read it, where it goes, and its labels.csv row."""

    source: Path
    read: Callable[[Path], np.ndarray]
    relpath: str
    label: str
    signer: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _subfolders(folder: Path) -> list[Path]:
    """Sub-folders, without hidden ones such as Jupyter's .ipynb_checkpoints."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _mpdata_items(src: Path) -> Iterator[_Item]:
    root = src / "MP_Data" if (src / "MP_Data").is_dir() else src
    for action in _subfolders(root):
        for seq in sorted(_subfolders(action), key=_numeric_key):
            yield _Item(seq, read_mpdata_sequence, f"{LANDMARKS_DIR}/{action.name}/{seq.name}.npy",
                        action.name, None, {"sequence": seq.name})


def _kaggle_items(src: Path) -> Iterator[_Item]:
    import pandas as pd  # imported here: only this format needs it

    index = src / "train.csv" if src.is_dir() else src
    try:
        table = pd.read_csv(index, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise FormatError(f"{index}: can not read the Kaggle index ({exc})") from None
    missing = [c for c in ("path", "participant_id", "sequence_id", "sign") if c not in table.columns]
    if missing:
        raise FormatError(f"{index}: missing column(s) {missing}; found {list(table.columns)}")
    for row in table.itertuples(index=False):
        yield _Item(index.parent / row.path, read_kaggle_parquet,
                    f"{LANDMARKS_DIR}/{row.participant_id}/{row.sequence_id}.npy",
                    row.sign, row.participant_id, {"sequence_id": row.sequence_id})


def _hands_items(src: Path) -> Iterator[_Item]:
    csv_path = src / "labels.csv" if src.is_dir() else src
    base = csv_path.parent.resolve()
    samples = read_labels(csv_path)
    videos = [s.path for s in samples if s.path.suffix.lower() in VIDEO_EXTENSIONS]
    if videos:  # a video dataset given by mistake: one error, not one per row
        raise FormatError(f"{csv_path}: {len(videos)} of {len(samples)} rows are videos (e.g. {videos[0].name}), "
                          f"not hands-only landmark arrays; turn videos into landmarks with "
                          f"`signrec extract {csv_path} --out DIR`")
    for s in samples:
        rel = Path(os.path.relpath(s.path, base))
        if rel.parts and rel.parts[0] == "..":  # a file outside the dataset folder keeps only its name
            rel = Path(LANDMARKS_DIR) / rel.name
        yield _Item(s.path, read_hands, rel.with_suffix(".npy").as_posix(), s.label, s.signer, s.extra)


IMPORTERS: dict[str, Callable[[Path], Iterator[_Item]]] = {
    "mpdata": _mpdata_items,
    "kaggle": _kaggle_items,
    "hands": _hands_items,
}


def import_dataset(fmt: str, src: str | os.PathLike, out: str | os.PathLike, progress: bool = True,
                   shards: str | None = None, shard_mb: float = 256) -> Report:
    """Convert every sequence of `src` into a landmark dataset in `out`; bad files are reported, not fatal.

    `shards` ("float32" or "float16"): write a shard store at `out` (a folder or fsspec URL) instead, one sequence
    at a time, so that memory holds at most the shard being written (`shard_mb`), whatever the size of the source."""
    if fmt not in IMPORTERS:
        raise SignrecError(f"unknown format {fmt!r}; choose from {sorted(IMPORTERS)}")
    src = Path(src)
    if not src.exists():
        raise FormatError(f"{src}: no such file or folder")
    items = list(IMPORTERS[fmt](src))
    if not items:
        raise FormatError(f"{src}: no sequences found for format {fmt!r}")
    if shards is not None:
        return _import_shards(fmt, items, str(out), shards, shard_mb, progress)
    out = Path(out)
    if any((out / item.relpath).resolve() == item.source.resolve() for item in items):
        raise FormatError(f"{out}: writing there would overwrite the source files; choose another --out")
    report = Report(out=str(out))
    samples = []
    for item in tqdm(items, desc=f"import {fmt}", unit="seq", disable=None if progress else True):
        try:
            array = item.read(item.source)
            landmarks.save(out / item.relpath, array)
        except SignrecError as exc:
            report.failed.append((str(item.source), str(exc)))
            continue
        if np.isnan(array).all():  # kept, as extract keeps a video with no person in it, but said
            report.warnings.append((str(item.source), "no landmarks in any frame: all NaN"))
        report.converted += 1
        samples.append(Sample(out / item.relpath, item.label, item.signer, item.extra))
    if samples:
        write_labels(out / "labels.csv", samples)
    return report


def _import_shards(fmt: str, items: list[_Item], out: str, dtype: str, shard_mb: float, progress: bool) -> Report:
    """The items read one by one straight into shards; in a seeded random order, as `signrec pack` writes."""
    import random

    from signrec.landmarks.shards import ShardWriter

    writer = ShardWriter(out, dtype, shard_mb)
    report = Report(out=out)
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    for position in tqdm(order, desc=f"import {fmt}", unit="seq", disable=None if progress else True):
        item = items[position]
        try:
            array = item.read(item.source)
            writer.add(Sample(item.source, item.label, item.signer, item.extra), item.relpath, array, position)
        except SignrecError as exc:
            report.failed.append((str(item.source), str(exc)))
            writer.failed.append(str(exc))
            continue
        if np.isnan(array).all():
            report.warnings.append((str(item.source), "no landmarks in any frame: all NaN"))
        report.converted += 1
    if report.converted:
        writer.close()
    return report


def import_mpdata(src: str | os.PathLike, out: str | os.PathLike) -> Report:
    return import_dataset("mpdata", src, out)


def import_kaggle(src: str | os.PathLike, out: str | os.PathLike) -> Report:
    return import_dataset("kaggle", src, out)


def import_hands(src: str | os.PathLike, out: str | os.PathLike) -> Report:
    return import_dataset("hands", src, out)


# --- export -----------------------------------------------------------------------------------------------

_NOT_IN_FOLDER_NAMES = re.compile(r'[<>:"/\\|?*\x00-\x1f]|^\.|[. ]$')
"""Characters Windows forbids in a file name, a leading dot (hidden: importers skip it) and a trailing dot or
space (Windows drops it)."""
_RESERVED_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"{port}{i}" for port in ("COM", "LPT") for i in range(1, 10))}
"""Names Windows reserves for devices, with any extension."""


def mpdata_folders(labels: Iterable[str], source: str | os.PathLike = "<labels>") -> dict[str, str]:
    """Each label's folder name in the MP_Data layout, valid on every system (see the module's docstring).

    FormatError naming `source` if two labels would share a folder, also one that differs only in case."""
    folders: dict[str, str] = {}
    owners: dict[str, str] = {}
    for label in labels:
        if label in folders:
            continue
        name = _NOT_IN_FOLDER_NAMES.sub("_", label)
        if name.split(".")[0].upper() in _RESERVED_NAMES:
            name = f"_{name}"
        other = owners.setdefault(name.casefold(), label)
        if other != label:
            raise FormatError(f"{source}: labels {other!r} and {label!r} would share the folder {name!r} "
                              "(folder names must be valid on Windows, which also ignores case); rename one")
        folders[label] = name
    return folders


def write_mpdata_sequence(folder: str | os.PathLike, array: np.ndarray) -> None:
    """Write one sequence as <folder>/<frame>.npy; the folder appears complete or not at all."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    frames = to_mpdata_frames(array)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        for i, frame in enumerate(frames):
            np.save(tmp / f"{i}.npy", frame)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_mpdata(data: str | os.PathLike, out: str | os.PathLike, progress: bool = True) -> Report:
    """Landmark dataset -> out/<label's folder>/<index>/<frame>.npy (index counts per label, in labels.csv order;
    the folder is the label made a valid name on every system, `mpdata_folders`)."""
    data, out = Path(data), Path(out)
    labels_csv = data / "labels.csv" if data.is_dir() else data
    samples = read_labels(labels_csv)
    folders = mpdata_folders((s.label for s in samples), labels_csv)
    report = Report(out=str(out), renamed={label: name for label, name in folders.items() if name != label})
    counts: dict[str, int] = {}
    for s in tqdm(samples, desc="export mpdata", unit="seq", disable=None if progress else True):
        name = folders[s.label]
        try:
            array = landmarks.load(s.path)
            index = counts.get(name, 0)
            write_mpdata_sequence(out / name / str(index), array)
        except SignrecError as exc:
            report.failed.append((str(s.path), str(exc)))
            continue
        counts[name] = index + 1
        report.converted += 1
    return report


# --- command line -----------------------------------------------------------------------------------------


