"""A landmark dataset opened once and handed down the layers as one value.

Training, evaluation and export all need the same facts of a dataset: its samples (labels, signers), the
landmark models that made it (from its manifest), its arrays, and what each sample is called by the person who
made it (the video it came from). A LandmarkStore holds them, read once. FolderStore is the first kind: a
folder with labels.csv, one .npy per sample and, when `signrec extract` made it, manifest.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from signrec.landmarks import layout
from signrec.landmarks.dataset import Sample, deduplicate, labels_of, read_labels, signers_of

LABELS = "labels.csv"
MANIFEST = "manifest.json"


class LandmarkStore(Protocol):
    """What the layers above need of a landmark dataset, wherever it is kept."""

    name: str
    """How messages name the dataset (its labels.csv, for a folder)."""
    samples: list[Sample]
    landmark_models: dict[str, Any]
    """The LANDMARK_MODELS values its landmarks were made with."""
    failed: list[str]
    """Recordings of the dataset that could not be made into landmarks (videos that failed), each reason naming
    its file: bad files for the caller to report."""
    notes: list[str]
    """What else to say about the data, each naming its file: a repeated row (used once), no person found."""

    def labels(self) -> list[str]: ...

    def signers(self) -> list[str]: ...

    def load(self, sample: Sample) -> np.ndarray:
        """One sample's landmarks, validated; LandmarkError naming it if unusable."""
        ...

    def source(self, sample: Sample) -> str:
        """What the user knows the sample as: its video when it was extracted from one, else its file."""
        ...


@dataclass
class FolderStore:
    """labels.csv + one landmark .npy per row (+ manifest.json): what `signrec extract` and `signrec import` write."""

    labels_csv: Path
    samples: list[Sample]
    manifest: dict[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    """Sample key -> the video it was extracted from, for a dataset of videos extracted into a cache."""
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, labels_csv: str | os.PathLike, sources: Mapping[str, str] | None = None,
             samples: list[Sample] | None = None, failed: Sequence[str] = (),
             notes: Sequence[str] = ()) -> FolderStore:
        """Read labels.csv (unless its `samples` were read already) and the manifest beside it (missing or
        unreadable: an empty manifest). A file listed twice is used once and noted; listed with another label or
        signer it is refused (DatasetError): it would be learnt as one sign and scored as another."""
        labels_csv = Path(labels_csv)
        try:
            manifest = json.loads((labels_csv.parent / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        samples, repeats = deduplicate(read_labels(labels_csv) if samples is None else samples, labels_csv)
        notes = [*notes, *(f"{path}: listed {n} times in {labels_csv}; used once" for path, n in repeats.items())]
        return cls(labels_csv, samples, manifest if isinstance(manifest, dict) else {}, dict(sources or {}),
                   list(failed), notes)

    @property
    def name(self) -> str:
        return str(self.labels_csv)

    @property
    def landmark_models(self) -> dict[str, Any]:
        return landmark_models_of(self.manifest)

    def labels(self) -> list[str]:
        return labels_of(self.samples)

    def signers(self) -> list[str]:
        return signers_of(self.samples)

    def load(self, sample: Sample) -> np.ndarray:
        return layout.load(sample.path)

    def source(self, sample: Sample) -> str:
        return self.sources.get(sample.key, sample.key)


def landmark_models_of(manifest: dict[str, Any]) -> dict[str, Any]:
    """The LANDMARK_MODELS an extraction used, from its manifest.json; the defaults for a dataset without them
    (imported from another format, or extracted before they were settings)."""
    try:
        made = dict(manifest["extractor"]["settings"])
    except (KeyError, TypeError, ValueError):
        made = {}
    return {name: made.get(name, default) for name, default in layout.LANDMARK_MODELS.items()}


def load_all(store: LandmarkStore, samples: Sequence[Sample] | None = None,
             ) -> tuple[list[Sample], list[np.ndarray], list[str]]:
    """Every sample's landmarks (default: all of the store's): (samples kept, their arrays, what was wrong with
    the others). One broken file, or one in which nothing was detected, is left out and described, so that it
    does not stop a run."""
    kept, arrays, bad = [], [], []
    for sample in store.samples if samples is None else samples:
        try:
            arrays.append(layout.require_usable(store.load(sample), store.source(sample)))
            kept.append(sample)
        except layout.LandmarkError as exc:
            bad.append(str(exc))
    return kept, arrays, bad
