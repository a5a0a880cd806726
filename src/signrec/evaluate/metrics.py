"""The numbers: top-1, top-5, macro-F1 and per-class figures, and which signers a model has already seen (their
scores overstate accuracy on new people)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from signrec.landmarks.dataset import Sample


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


def trained_signers(classifier: Any, saved_split: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """The signers a model trained ("train") and early-stopped ("val") on, from its model.json; for a model saved
    before model.json held them, from `saved_split` (split.json of its run folder). Empty when unknown."""
    split = classifier.meta.get("training", {}).get("split")
    if not isinstance(split, dict):
        split = saved_split
    signers = split.get("signers", {}) if isinstance(split, dict) else {}
    return {part: list(signers.get(part, [])) for part in ("train", "val")}


def seen_signers(samples: Sequence[Sample], trained: dict[str, list[str]]) -> dict[str, Any]:
    """Which of `samples` come from signers in `trained`: scores on them overstate accuracy on new people."""
    seen = {part: sorted({s.signer for s in samples if s.signer in names}) for part, names in trained.items()}
    every = set(seen["train"]) | set(seen["val"])
    return {"clips": sum(s.signer in every for s in samples), **seen}
