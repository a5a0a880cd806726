"""Scoring a model on a labelled dataset: numbers to compare and pictures to look at.

    signrec evaluate RUN/model DATA [--out DIR] [--json]

Writes to DIR (default: beside the model, `evaluation/`): report.json (top-1, top-5, macro-F1, per-class
precision/recall), misclassified.csv (file, true, predicted, confidence), confusion.png and, when the model
sits in a training run folder, learning_curves.png from the run's CSV log. DATA may be videos: they are
extracted once and cached (extract.ensure_landmarks); files are still named by their videos.

Clips of signers the model trained or early-stopped on are scored too, with a warning: their accuracy says
little about new signers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import unicodedata
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signrec import SignrecError, cli
from signrec.dataset import Sample, read_labels
from signrec.files import atomic_path, write_json


def score(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str], per_class: bool = True) -> dict[str, Any]:
    """Top-1, top-5, macro-F1 (over the classes present in `y_true`) and optionally per-class figures."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    y_true = np.asarray(y_true)
    pred = proba.argmax(1)
    k = min(5, proba.shape[1])
    topk = np.argsort(-proba, axis=1)[:, :k]
    present = np.unique(y_true)
    result: dict[str, Any] = {
        "n": len(y_true),
        "top1": float(np.mean(pred == y_true)),
        "top5": float(np.mean((topk == y_true[:, None]).any(1))),
        "macro_f1": float(f1_score(y_true, pred, labels=present, average="macro", zero_division=0)),
    }
    if per_class:
        p, r, f, support = precision_recall_fscore_support(y_true, pred, labels=np.arange(len(labels)),
                                                           zero_division=0)
        result["per_class"] = {labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                           "support": int(support[i])} for i in range(len(labels))}
    return result


def evaluate(classifier: Any, samples: Sequence[Sample], out: str | os.PathLike | None = None,
             run_dir: str | os.PathLike | None = None, sources: Mapping[str, str] | None = None,
             failed: Sequence[str] = ()) -> dict[str, Any]:
    """Score `classifier` on `samples`; bad files and labels the model does not know are reported, not fatal.

    `sources` maps a sample's landmark file to the video it was extracted from, the name the user knows it by;
    `failed` lists the dataset's videos that could not be extracted, reported as bad files before the others.
    """
    from signrec import landmarks
    from signrec.train import load_arrays

    index = {label: i for i, label in enumerate(classifier.labels)}
    known = [s for s in samples if s.label in index]
    if not known:
        raise SignrecError(f"none of the dataset's labels ({_few(sorted({s.label for s in samples}))}) are among "
                           f"the model's ({_few(classifier.labels)}); is this the dataset the model was made for?")
    kept, arrays, bad = load_arrays(known)
    bad = [*failed, *bad]
    report: dict[str, Any] = {"bad_files": bad, "unknown_labels": sorted({s.label for s in samples} - set(index)),
                              "skipped_unknown_label": len(samples) - len(known)}
    if not kept:
        raise landmarks.LandmarkError("no usable sample to evaluate" + (f": {bad[0]}" if bad else ""))
    report["seen_signers"] = seen_signers(kept, trained_signers(classifier, run_dir))
    y = np.array([index[s.label] for s in kept])
    proba = classifier.predict_proba(arrays)
    report.update(score(y, proba, classifier.labels))
    pred = proba.argmax(1)
    sources = sources or {}
    report["misclassified"] = [
        {"path": sources.get(s.key, s.key), "true": s.label, "pred": classifier.labels[p],
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
        log = Path(run_dir) / "logs" / "metrics.csv" if run_dir else None
        if log is not None and log.is_file():
            plot_learning_curves(log, out / "learning_curves.png")
            report["files"]["learning_curves"] = str(out / "learning_curves.png")
        write_json(out / "report.json", report)
    return report


def trained_signers(classifier: Any, run_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """The signers a model trained ("train") and early-stopped ("val") on, from its model.json; for a model saved
    before model.json held them, from split.json of its run folder. Empty when unknown."""
    split = classifier.meta.get("training", {}).get("split")
    if not isinstance(split, dict) and run_dir is not None and (Path(run_dir) / "split.json").is_file():
        split = json.loads((Path(run_dir) / "split.json").read_text(encoding="utf-8"))
    signers = split.get("signers", {}) if isinstance(split, dict) else {}
    return {part: list(signers.get(part, [])) for part in ("train", "val")}


def seen_signers(samples: Sequence[Sample], trained: dict[str, list[str]]) -> dict[str, Any]:
    """Which of `samples` come from signers in `trained`: scores on them overstate accuracy on new people."""
    seen = {part: sorted({s.signer for s in samples if s.signer in names}) for part, names in trained.items()}
    every = set(seen["train"]) | set(seen["val"])
    return {"clips": sum(s.signer in every for s in samples), **seen}


def _few(items: Sequence[str], k: int = 5) -> str:
    """The first `k` items, quoted, and how many more."""
    shown = ", ".join(repr(item) for item in items[:k])
    return shown + (f" and {len(items) - k} more" if len(items) > k else "")


def video_sources(data: str | os.PathLike, landmarks_csv: Path) -> dict[str, str]:
    """Landmark file -> its video, when `data` is a video dataset that ensure_landmarks extracted to the cache
    folder of `landmarks_csv` (the same plan as the extraction's, so the pairs match); empty for landmark data."""
    from signrec.extract import LABELS, plan_jobs

    data = Path(data)
    if data.is_dir() and (data / LABELS).is_file():
        data = data / LABELS
    if data.resolve() == landmarks_csv.resolve():
        return {}
    return {str(job.output.resolve()): str(job.source) for job in plan_jobs(data, landmarks_csv.parent)}


# ---- plots ---------------------------------------------------------------------------------------
def display_label(label: str) -> str:
    """Label text as it should appear on a plot: right-to-left scripts (Arabic, Hebrew) put in visual order.

    Matplotlib draws characters left to right without bidi reordering; reversing an RTL label restores
    reading order (letters stay in isolated forms, which is legible).
    """
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in label):
        return label[::-1]
    return label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], path: str | os.PathLike) -> None:
    """Row-normalised confusion matrix with counts, for the classes that occur in truth or prediction."""
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    used = np.unique(np.concatenate([y_true, y_pred]))
    with warnings.catch_warnings():  # one class used is a 1x1 matrix, rightly: the plot shows only the used ones
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        cm = confusion_matrix(y_true, y_pred, labels=used)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    names = [display_label(labels[i]) for i in used]
    size = max(4.0, 0.45 * len(used) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(used)), names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(used)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = float(np.trace(cm) / max(1, cm.sum()))
    ax.set_title(f"confusion matrix: {cm.sum()} clips, top-1 {accuracy:.1%}")
    if len(used) <= 40:
        for i in range(len(used)):
            for j in range(len(used)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    _save(fig, path)


def read_log(csv_path: str | os.PathLike) -> dict[str, dict[int, float]]:
    """Lightning CSVLogger metrics.csv -> {metric: {epoch: value}} (last value per epoch)."""
    series: dict[str, dict[int, float]] = {}
    pending: list[dict[str, str]] = []  # the learning-rate monitor's rows carry a step but no epoch
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pending.append(row)
            if not row.get("epoch"):
                continue
            epoch = int(float(row["epoch"]))
            for item in pending:
                for key, value in item.items():
                    if key not in ("epoch", "step") and value not in (None, ""):
                        series.setdefault(key, {})[epoch] = float(value)
            pending = []
    return series


def plot_learning_curves(csv_path: str | os.PathLike, path: str | os.PathLike) -> None:
    """Loss, accuracy and learning rate per epoch, train against validation."""
    plt = _pyplot()
    series = read_log(csv_path)
    lr_keys = [k for k in series if k.startswith("lr")]
    fig, axes = plt.subplots(1, 3 if lr_keys else 2, figsize=(13 if lr_keys else 9, 3.6))
    for ax, metric in zip(axes, ("loss", "acc"), strict=False):
        for stage in ("train", "val"):
            points = series.get(f"{stage}_{metric}", {})
            if points:
                ax.plot(list(points), list(points.values()), label=stage, marker="." if len(points) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_title({"loss": "cross-entropy loss", "acc": "top-1 accuracy"}[metric])
        ax.grid(alpha=0.3)
        ax.legend()
    val = series.get("val_loss", {})
    if val:
        best = min(val, key=val.get)
        axes[0].axvline(best, color="grey", linestyle="--", linewidth=1)
        axes[0].annotate(f"best epoch {best}", (best, val[best]), textcoords="offset points", xytext=(5, 10))
    if lr_keys:
        for key in lr_keys:
            axes[2].plot(list(series[key]), list(series[key].values()), label=key)
        axes[2].set_title("learning rate")
        axes[2].set_xlabel("epoch")
        axes[2].grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


# ---- command line --------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder (e.g. RUN/model)")
    parser.add_argument("data", help="labels.csv (or folder) of landmark files or videos")
    parser.add_argument("--out", type=Path, help="where to write report and plots (default: MODEL/../evaluation)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    cli.add_json_flag(parser)
    parser.epilog = ("Clips of signers the model was trained or early-stopped on (listed in its model.json) are "
                     "scored too, but with a warning, and counted under seen_signers in the --json report: for "
                     "accuracy on new people, evaluate on signers the model never saw. Exit status: 0 done, "
                     "1 some files could not be read (listed), 2 bad usage.")


def run(args: argparse.Namespace) -> int:
    from signrec.artifact import Classifier
    from signrec.extract import ensure_landmarks, landmark_models

    classifier = Classifier.load(args.model, backend=args.backend)
    failed: list[str] = []  # videos that could not be extracted: bad files like unreadable landmark files
    csv_path = ensure_landmarks(args.data, settings=classifier.landmark_settings(), progress=not args.json,
                                failed=failed)
    classifier.check_landmarks(landmark_models(csv_path), csv_path)
    samples = read_labels(csv_path)
    model_dir = Path(args.model).resolve()
    run_dir = model_dir.parent if (model_dir.parent / "logs" / "metrics.csv").is_file() else None
    out = args.out or model_dir.parent / "evaluation"
    report = evaluate(classifier, samples, out, run_dir, video_sources(args.data, csv_path), failed)
    cli.emit(args, report, format_report(report))
    return 1 if report["bad_files"] else 0


def format_report(report: dict[str, Any], worst: int = 10) -> str:
    lines = []
    seen = report["seen_signers"]
    if seen["clips"]:
        parts = [f"{name} {', '.join(seen[part])}" for part, name in (("train", "trained on"),
                                                                      ("val", "early-stopped on")) if seen[part]]
        lines += [f"WARNING: {seen['clips']} of {report['n']} clips are by signers the model has seen "
                  f"({'; '.join(parts)}): their scores overstate accuracy on new signers.", ""]
    if report["unknown_labels"]:
        lines += [f"left out {_clips(report['skipped_unknown_label'])}: their labels "
                  f"({_few(report['unknown_labels'])}) are not among the model's", ""]
    lines += [f"{_clips(report['n'])}: top-1 {report['top1']:.1%}  top-5 {report['top5']:.1%}  "
              f"macro-F1 {report['macro_f1']:.3f}", "", f"{'class':<24} precision  recall  clips"]
    for label, c in report["per_class"].items():
        if c["support"]:
            lines.append(f"{label:<24} {c['precision']:9.1%} {c['recall']:7.1%} {c['support']:6d}")
    wrong = report["misclassified"]
    if wrong:
        lines += ["", f"{len(wrong)} misclassified" + (f" (first {worst})" if len(wrong) > worst else "") + ":"]
        lines += [f"  {w['path']}: {w['true']} -> {w['pred']} ({w['confidence']:.0%})" for w in wrong[:worst]]
    for problem in report["bad_files"]:
        lines.append(f"skipped: {problem}")
    if "files" in report:
        lines += ["", "written: " + ", ".join(report["files"].values())]
    return "\n".join(lines)


def _clips(n: int) -> str:
    return f"{n} clip" + ("" if n == 1 else "s")
