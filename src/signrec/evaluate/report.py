"""Scoring a model on a labelled dataset: numbers to compare and pictures to look at.

    signrec evaluate RUN/model DATA [--out DIR] [--json]

Writes to DIR (default: beside the model, `evaluation/`): report.json (top-1, top-5, macro-F1, per-class
precision/recall), misclassified.csv (file, true, predicted, confidence), confusion.png and, when the model
sits in a training run folder, learning_curves.png from the run's CSV log. DATA may be videos: they are
extracted once and cached (video.batch.open_dataset); files are still named by their videos. DATA may be a shard
store (`signrec pack`): it is streamed, `CHUNK` sequences in memory at a time, whatever its size.

Clips of signers the model trained or early-stopped on are scored too, with a warning: their accuracy says
little about new signers.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError
from signrec.evaluate.card import model_card
from signrec.evaluate.metrics import score, seen_signers, trained_signers
from signrec.evaluate.plots import plot_confusion, plot_learning_curves
from signrec.files import atomic_path, write_json
from signrec.landmarks.dataset import Sample
from signrec.landmarks.layout import LandmarkError, require_usable
from signrec.landmarks.shards import ShardStore
from signrec.landmarks.store import LandmarkStore

CHUNK = 256
"""Sequences scored at a time: with a shard store, the bound on the landmarks held (about 40 MB of MLR511)."""


def evaluate(classifier: Any, store: LandmarkStore, out: str | os.PathLike | None = None,
             learning_log: str | os.PathLike | None = None,
             saved_split: dict[str, Any] | None = None, samples: Sequence[Sample] | None = None) -> dict[str, Any]:
    """Score `classifier` on the samples of `store` (or those of them given); bad files and labels the model does not know are reported,
    not fatal. Clips are named as the user knows them (`store.source`: the video, for extracted videos).

    `learning_log`: the CSV log of the model's training run, drawn as learning curves beside the report;
    `saved_split`: its split.json, for a model whose model.json does not list its signers (older models).
    """
    samples = store.samples if samples is None else list(samples)
    index = {label: i for i, label in enumerate(classifier.labels)}
    known = [s for s in samples if s.label in index]
    if not known:
        raise SignrecError(f"none of the dataset's labels ({_few(sorted({s.label for s in samples}))}) are among "
                           f"the model's ({_few(classifier.labels)}); is this the dataset the model was made for?")
    kept, proba, bad = _predict(classifier, store, known)
    if samples is store.samples:  # the whole dataset: its videos that could not be extracted are bad files too
        bad = [*store.failed, *bad]
    report: dict[str, Any] = {"bad_files": bad, "unknown_labels": sorted({s.label for s in samples} - set(index)),
                              "skipped_unknown_label": len(samples) - len(known)}
    if not kept:
        raise LandmarkError("no usable sample to evaluate" + (f": {bad[0]}" if bad else ""))
    report["seen_signers"] = seen_signers(kept, trained_signers(classifier, saved_split))
    report["card"] = model_card(classifier.meta)  # what the model is expected to do, beside what it did here
    y = np.array([index[s.label] for s in kept])
    report.update(score(y, proba, classifier.labels))
    pred = proba.argmax(1)
    report["misclassified"] = [
        {"path": store.source(s), "true": s.label, "pred": classifier.labels[p],
         "confidence": float(proba[i, p]), "p_true": float(proba[i, y[i]])}
        for i, (s, p) in enumerate(zip(kept, pred, strict=True)) if p != y[i]]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report["files"] = {"report": str(out / "report.json"), "misclassified": str(out / "misclassified.csv"),
                           "confusion": str(out / "confusion.png")}
        with atomic_path(out / "misclassified.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "true", "pred", "confidence", "p_true"])
            writer.writeheader()
            writer.writerows(report["misclassified"])
        plot_confusion(y, pred, classifier.labels, out / "confusion.png")
        if learning_log is not None and Path(learning_log).is_file():
            plot_learning_curves(learning_log, out / "learning_curves.png")
            report["files"]["learning_curves"] = str(out / "learning_curves.png")
        write_json(out / "report.json", report)
    return report


def _read(store: LandmarkStore, samples: Sequence[Sample]) -> Iterator[tuple[Sample, np.ndarray | LandmarkError]]:
    """Each sample's landmarks, or why they can not be read. A shard store is streamed a row group at a time, in
    its own order, and a row group it can not read is named in its `errors` instead."""
    if isinstance(store, ShardStore):
        yield from store.stream([s.key for s in samples])
        return
    for sample in samples:
        try:
            yield sample, store.load(sample)
        except LandmarkError as exc:
            yield sample, exc


def _predict(classifier: Any, store: LandmarkStore, samples: Sequence[Sample]
             ) -> tuple[list[Sample], np.ndarray, list[str]]:
    """(samples kept, their probabilities, what was wrong with the others), `CHUNK` sequences in memory at a time:
    a dataset larger than memory (a shard store) is scored as it streams."""
    kept: list[Sample] = []
    probas: list[np.ndarray] = [np.zeros((0, len(classifier.labels)), np.float32)]
    bad: list[str] = []
    chunk: list[tuple[Sample, np.ndarray]] = []
    errors = len(store.errors) if isinstance(store, ShardStore) else 0

    def flush() -> None:
        if chunk:
            probas.append(classifier.predict_proba([array for _s, array in chunk]))
            kept.extend(s for s, _array in chunk)
            chunk.clear()

    for sample, array in _read(store, samples):
        try:
            if isinstance(array, LandmarkError):
                raise array
            chunk.append((sample, require_usable(array, store.source(sample))))
        except LandmarkError as exc:
            bad.append(str(exc))
        if len(chunk) == CHUNK:
            flush()
    flush()
    if isinstance(store, ShardStore):
        bad.extend(store.errors[errors:])
    return kept, np.concatenate(probas), bad


def _few(items: Sequence[str], k: int = 5) -> str:
    """The first `k` items, quoted, and how many more."""
    shown = ", ".join(repr(item) for item in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")

