"""A model card: what a user can expect of a model folder, from what its model.json and run folder measured.

Accuracy on a new person comes from the test signers held out of its training (metrics.test) and, when the model
is a fold of a leave-one-signer-out run (or the run beside it has one), from that run's loso.json: mean and range
over folds. A personal model adds what it was enrolled with; every model with a calibrated "not a sign" threshold
says where it stands. Nothing here is measured anew: the card only gathers, and says when a figure is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def card(model_dir: str | Path, classifier: Any) -> dict[str, Any]:
    """The card of a loaded classifier from `model_dir` (the folder, for its run's loso.json)."""
    meta = classifier.meta
    training = meta.get("training") or {}
    split = training.get("split") or {}
    test = (meta.get("metrics") or {}).get("test")
    out: dict[str, Any] = {
        "model": str(model_dir), "signs": classifier.labels, "network": classifier.model_name,
        "trained_on": {"data": training.get("data"), "signers": split.get("signers")},
        "new_person": None, "loso": _loso(Path(model_dir)), "enrollment": None, "unknown": meta.get("unknown"),
    }
    if test:
        out["new_person"] = {"top1": test["top1"], "clips": test["n"],
                             "signers": (split.get("signers") or {}).get("test")}
    if meta.get("enrollment"):
        e = meta["enrollment"]
        out["enrollment"] = {"signer": e["signer"], "signs": e["signs"], "new_signs": e["new_signs"],
                             "base_weights_sha256": e["base"]["weights_sha256"], "check": e["check"]}
    return out


def _loso(model_dir: Path) -> dict[str, Any] | None:
    """Mean and range of a leave-one-signer-out run that this model is a fold of, or that sits beside it."""
    for run in (model_dir.resolve().parent.parent, model_dir.resolve().parent):
        path = run / "loso.json"
        if path.is_file():
            summary = json.loads(path.read_text(encoding="utf-8"))
            top1 = [fold["top1"] for fold in summary["folds"]]
            return {"mean_top1": summary["mean"]["top1"], "lowest": min(top1), "highest": max(top1),
                    "folds": len(top1), "from": str(path)}
    return None


def text(c: dict[str, Any]) -> str:
    """The card as a person reads it."""
    lines = [f"model {c['model']}: {c['network']}, {len(c['signs'])} signs ({', '.join(c['signs'][:12])}"
             f"{', ...' if len(c['signs']) > 12 else ''})"]
    signers = c["trained_on"]["signers"] or {}
    if signers.get("train"):
        lines.append(f"trained on signers {', '.join(signers['train'])}; early-stopped on {', '.join(signers['val'])}")
    if c["loso"]:
        lo = c["loso"]
        lines.append(f"on a new person (each of {lo['folds']} signers held out in turn): {lo['mean_top1']:.1%} "
                     f"top-1 on average, {lo['lowest']:.0%} to {lo['highest']:.0%}")
    if c["new_person"]:
        n = c["new_person"]
        lines.append(f"on held-out signer(s) {', '.join(n['signers'] or [])}: {n['top1']:.1%} top-1 "
                     f"({n['clips']} clips)")
    if not c["loso"] and not c["new_person"]:
        lines.append("accuracy on a new person: not measured for this model (train with --loso or --test-signers)")
    if c["enrollment"]:
        e = c["enrollment"]
        clips = sorted(set(e["signs"].values()))
        lines.append(f"personal model of {e['signer'] or 'one person'}: {len(e['signs'])} signs enrolled with "
                     f"{'/'.join(map(str, clips))} clips each ({len(e['new_signs'])} new); "
                     f"{e['check']['top1_on_enrollment_clips']:.0%} of the enrollment clips recognised")
        lines.append("after enrollment with 1 / 3 / 5 clips per sign, new signers of the public sets reached "
                     "95.5 / 97.4 / 98.5 % (MLR511) and 93.7 / 96.3 % (LSA64; BENCHMARKS.md, 'Enrollment')")
    if c["unknown"]:
        u = c["unknown"]
        lines.append(f"'unknown' below probability {u['threshold']:.2f}, which keeps {u['keeps']:.0%} of "
                     f"{u['calibrated_on']}; new signers keep fewer (87-90 % on MLR511, BENCHMARKS.md 'Not a sign')")
    else:
        lines.append("'unknown' below probability 0.40 (no calibrated threshold in this model)")
    return "\n".join(lines)
