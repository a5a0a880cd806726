"""Small real datasets for the training, artifact and evaluation tests, built from ../shared/data on the fly."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from signrec import landmarks
from signrec.landmarks import dataset, formats

LSA64_SIGNS = ("Accept", "Deaf", "Food", "Green", "Thanks")


def lsa64_subset(shared_data: Path, out: Path, signs: tuple[str, ...] = LSA64_SIGNS,
                 signers: tuple[str, ...] | None = None, repetitions: int = 5) -> Path:
    """Hands-only LSA64 sequences converted to (T, 543, 3) landmark files; returns the labels.csv."""
    rows = []
    for s in dataset.read_labels(shared_data / "lsa64_hands" / "labels.csv"):
        if s.label in signs and (signers is None or s.signer in signers) \
                and int(s.extra["repetition"]) <= repetitions:
            target = out / "landmarks" / s.path.name
            landmarks.save(target, formats.from_hands(np.load(s.path), s.path))
            rows.append(dataset.Sample(target, s.label, s.signer))
    dataset.write_labels(out / "labels.csv", rows)
    return out / "labels.csv"


def mlr511_videos(shared_data: Path, csv_path: Path, signs: tuple[str, ...], signers: tuple[str, ...],
                  repetitions: tuple[str, ...]) -> Path:
    """A labels.csv of some real mlr511 videos, copied beside it (a few hundred kB) so that the dataset is
    self-contained, as a user's would be."""
    rows = []
    for s in dataset.read_labels(shared_data / "mlr511_arsl" / "labels.csv"):
        if s.label in signs and s.signer in signers and s.extra["repetition"] in repetitions:
            target = csv_path.parent / s.path.relative_to(shared_data / "mlr511_arsl")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.path, target)
            rows.append(dataclasses.replace(s, path=target))
    dataset.write_labels(csv_path, rows)
    return csv_path
