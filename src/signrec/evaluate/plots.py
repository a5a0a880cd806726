"""Pictures a person would rather look at than read: the confusion matrix and the learning curves."""

from __future__ import annotations

import csv
import os
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from signrec.files import atomic_path


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
