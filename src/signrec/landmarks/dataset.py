"""Labelled datasets: the `labels.csv` contract and signer-independent splits.

A dataset is a CSV with columns `path` and `label`, optionally `signer` and any others.
Paths are relative to the CSV. The same contract holds for videos and for landmark
files; `signrec extract` turns the first into the second.
"""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from signrec import SignrecError
from signrec.files import atomic_path

REQUIRED_COLUMNS = ("path", "label")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
"""What a dataset's rows may point at besides landmark .npy files."""


class DatasetError(SignrecError):
    """A labels.csv that can not be used, with the file and row named."""


@dataclass(frozen=True)
class Sample:
    """One labelled recording. `path` is absolute; `extra` holds the CSV's other columns."""

    path: Path
    label: str
    signer: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return str(self.path)


def read_labels(csv_path: str | os.PathLike) -> list[Sample]:
    """Read a labels.csv; paths become absolute. Missing files are kept (callers report them)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: no such labels file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            samples = _read_rows(csv_path, csv.DictReader(fh))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{csv_path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:  # an unclosed quote at the end, a field over the csv module's size limit
        raise DatasetError(f"{csv_path}: not a readable CSV file ({exc})") from None
    if not samples:
        raise DatasetError(f"{csv_path}: no rows")
    return samples


def _read_rows(csv_path: Path, reader: csv.DictReader) -> list[Sample]:
    """The rows of an open labels.csv; apart from read_labels so that its decoding errors are caught in one place."""
    columns = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DatasetError(f"{csv_path}: missing column(s) {missing}; found {columns}")
    samples = []
    for row_no, row in enumerate(reader, start=2):
        path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not path or not label:
            raise DatasetError(f"{csv_path}:{row_no}: empty path or label")
        if "\0" in path:  # no file system takes it; pathlib would raise ValueError
            raise DatasetError(f"{csv_path}:{row_no}: path contains a NUL character")
        signer = (row.get("signer") or "").strip() or None
        extra = {k: v for k, v in row.items() if k not in ("path", "label", "signer") and k}
        samples.append(Sample((csv_path.parent / path).resolve(), label, signer, extra))
    return samples


def write_labels(csv_path: str | os.PathLike, samples: Iterable[Sample]) -> None:
    """Write a labels.csv atomically, paths relative to it."""
    csv_path = Path(csv_path)
    samples = list(samples)
    extra_cols: list[str] = []
    for s in samples:
        extra_cols += [k for k in s.extra if k not in extra_cols]
    has_signer = any(s.signer is not None for s in samples)
    columns = ["path", "label"] + (["signer"] if has_signer else []) + extra_cols
    base = csv_path.parent.resolve()
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for s in samples:
            row = {"path": Path(os.path.relpath(s.path, base)).as_posix(), "label": s.label, **s.extra}
            if has_signer:
                row["signer"] = s.signer or ""
            writer.writerow(row)


def deduplicate(samples: Sequence[Sample], source: str | os.PathLike) -> tuple[list[Sample], dict[Path, int]]:
    """One sample per file, and how often each file listed more than once in `source` was. A file listed again
    with another label or signer is refused: it would be learnt as one sign and scored as another, or cross a
    split."""
    first: dict[Path, Sample] = {}
    times: dict[Path, int] = defaultdict(int)
    for s in samples:
        seen = first.setdefault(s.path, s)
        times[s.path] += 1
        if (seen.label, seen.signer) != (s.label, s.signer):
            raise DatasetError(f"{s.path}: listed twice in {source}, as {_as(seen)} and as {_as(s)}; a clip has one "
                               "label and one signer")
    return list(first.values()), {path: n for path, n in times.items() if n > 1}


def _as(sample: Sample) -> str:
    return repr(sample.label) + (f" by signer {sample.signer}" if sample.signer is not None else "")


def labels_of(samples: Sequence[Sample]) -> list[str]:
    """Sorted distinct labels: the label map order used by models."""
    return sorted({s.label for s in samples})


def signers_of(samples: Sequence[Sample]) -> list[str]:
    return sorted({s.signer for s in samples if s.signer is not None})


@dataclass(frozen=True)
class Split:
    """Train/validation/test partition of one dataset, with how it was made."""

    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    how: str

    def __post_init__(self) -> None:
        """A clip in two parts would be tested on what was learnt: refused, whoever made the split."""
        parts = [{s.path for s in part} for part in (self.train, self.val, self.test)]
        shared = (parts[0] & parts[1]) | (parts[0] & parts[2]) | (parts[1] & parts[2])
        if shared:
            raise DatasetError(f"{sorted(shared)[0]}: in more than one of train, validation and test "
                               f"({len(shared)} clip(s) in all)")

    def summary(self) -> dict[str, object]:
        return {
            "how": self.how,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "signers": {name: signers_of(part) for name, part in
                        (("train", self.train), ("val", self.val), ("test", self.test))},
        }

    def describe(self) -> str:
        """One line for the terminal: which signers (or, for a random split, how many clips) go where."""
        by_signer = self.how.startswith("by signer")
        parts = []
        for name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            signers = signers_of(part)
            who = ", ".join(signers) if len(signers) <= 6 else f"{len(signers)} signers"
            parts.append(f"{name} {who} ({len(part)} clips)" if by_signer and signers else f"{name} {len(part)} clips")
        return ("by signer: " if by_signer else "random, stratified by label: ") + ", ".join(parts)


def _require_signers(samples: Sequence[Sample], wanted: Iterable[str], option: str) -> None:
    known = set(signers_of(samples))
    if not known:
        raise DatasetError(f"{option}: this dataset has no `signer` column")
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise DatasetError(f"{option}: unknown signer(s) {unknown}; known: {sorted(known)}")


def split_by_signer(samples: Sequence[Sample], test_signers: Sequence[str],
                    val_signers: Sequence[str] = ()) -> Split:
    """Hold whole signers out, so that test accuracy is accuracy on people never seen in training."""
    _require_signers(samples, [*test_signers, *val_signers], "--test-signers/--val-signers")
    if set(test_signers) & set(val_signers):
        raise DatasetError("a signer can not be in both the validation and the test set")
    test = [s for s in samples if s.signer in test_signers]
    val = [s for s in samples if s.signer in val_signers]
    train = [s for s in samples if s.signer not in test_signers and s.signer not in val_signers]
    if not val:  # no validation signer named: hold out a stratified 15 % of the training signers' data
        train, val = _stratified(train, 0.15, seed=0)
    return Split(train, val, test, f"by signer: test={list(test_signers)} val={list(val_signers) or 'random 15%'}")


def split_stratified(samples: Sequence[Sample], val_fraction: float = 0.15, test_fraction: float = 0.15,
                     seed: int = 0) -> Split:
    """Random split keeping label proportions. Signers are mixed: accuracy will be optimistic."""
    rest, test = _stratified(list(samples), test_fraction, seed)
    train, val = _stratified(rest, val_fraction / max(1e-9, 1 - test_fraction), seed + 1)
    return Split(train, val, test, f"stratified random val={val_fraction} test={test_fraction} seed={seed}")


def loso_folds(samples: Sequence[Sample], val_signers: int = 1) -> list[tuple[str, Split]]:
    """Leave-one-signer-out: one fold per signer, tested on that signer.

    The next signer (cyclically) is the validation signer, so no fold peeks at its test signer
    for early stopping.
    """
    signers = signers_of(samples)
    if len(signers) < 2 + val_signers:
        raise DatasetError(f"--loso needs at least {2 + val_signers} signers, found {signers}")
    folds = []
    for i, test_signer in enumerate(signers):
        val = [signers[(i + 1 + k) % len(signers)] for k in range(val_signers)]
        folds.append((test_signer, split_by_signer(samples, [test_signer], val)))
    return folds


def _stratified(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    by_label: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    rng = random.Random(seed)
    keep, held = [], []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda s: s.key)
        rng.shuffle(group)
        n_held = round(len(group) * fraction) if len(group) > 1 else 0
        held += group[:n_held]
        keep += group[n_held:]
    return keep, held
