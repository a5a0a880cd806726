"""The model card: what a new user can expect of a model, in numbers measured on people it never saw.

It is made from what the model folder records (model.json: the split, the scores on the held-out signers,
the "not a sign" threshold, the enrollment) and, when given, from a leave-one-signer-out run of the same
recipe (loso.json: accuracy on a new person as a mean and spread over every signer) and an enrollment benchmark
(accuracy after enrolling k clips per sign). `signrec card MODEL --loso RUN --write` stores it in model.json under
"card"; `signrec evaluate` shows it beside its own report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def model_card(meta: Mapping[str, Any], loso: Mapping[str, Any] | None = None,
               enrollment: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card of a model from its model.json `meta`; `loso`: a loso.json of the same recipe; `enrollment`: the
    expected top-1 after enrolling k clips per sign, {k: {"mean", "min", "max", "folds"}} (benchmarks/enroll.py).
    What was written before (meta["card"]) is kept where nothing newer is given."""
    before = dict(meta.get("card") or {})
    training = meta.get("training") or {}
    split = training.get("split") if isinstance(training.get("split"), dict) else {}
    signers = (split or {}).get("signers") or {}
    card: dict[str, Any] = {
        "model": (meta.get("model") or {}).get("name"),
        "signs": list(meta.get("labels") or []),
        "landmarks": meta.get("landmarks") or {},
        "trained_on": {"data": training.get("data"), "train_signers": list(signers.get("train") or []),
                       "val_signers": list(signers.get("val") or [])},
        # a leave-one-signer-out spread, given now or stored before, says more than one held-out signer
        "new_person": (_new_person(meta, loso) if loso else None) or before.get("new_person")
                      or _new_person(meta, None)
                      or {"how": "not measured: train with --test-signers, or give a --loso run"},
    }
    if enrollment or before.get("after_enrollment"):
        card["after_enrollment"] = {str(k): dict(v) for k, v in (enrollment or before["after_enrollment"]).items()}
    if meta.get("enrollment"):
        record = meta["enrollment"]
        card["enrolled"] = {key: record.get(key) for key in ("signer", "signs", "clips_per_sign", "new_signs")
                            if key in record}
    if meta.get("unknown"):
        card["unknown"] = dict(meta["unknown"])
    return card


def _new_person(meta: Mapping[str, Any], loso: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if loso and loso.get("folds"):
        top1 = np.array([fold["top1"] for fold in loso["folds"]])
        return {"how": "leave one signer out", "folds": len(top1), "top1_mean": float(top1.mean()),
                "top1_std": float(top1.std()), "top1_min": float(top1.min()), "top1_max": float(top1.max()),
                "signers": [fold["signer"] for fold in loso["folds"]]}
    test = (meta.get("metrics") or {}).get("test")
    split = (meta.get("training") or {}).get("split")
    held_out = ((split or {}).get("signers") or {}).get("test") if isinstance(split, dict) else None
    if test and held_out:
        return {"how": "held-out signer" + ("s" if len(held_out) > 1 else ""), "signers": list(held_out),
                "clips": test["n"], "top1": test["top1"], "top5": test["top5"]}
    return None


def card_text(card: Mapping[str, Any]) -> str:
    """The card for a person to read."""
    lines = [f"model card: {card.get('model')}, {len(card['signs'])} signs ({_few(card['signs'])})"]
    trained = card.get("trained_on") or {}
    if trained.get("train_signers"):
        lines.append(f"  trained on {len(trained['train_signers'])} signers ({_few(trained['train_signers'])}), "
                     f"early-stopped on {_few(trained.get('val_signers') or []) or 'a random 15 %'}")
    person = card["new_person"]
    if "top1_mean" in person:
        lines.append(f"  on a new person: top-1 {person['top1_mean']:.1%} on average, {person['top1_min']:.0%} to "
                     f"{person['top1_max']:.0%} ({person['how']}, {person['folds']} signers)")
    elif "top1" in person:
        lines.append(f"  on a new person: top-1 {person['top1']:.1%} on {person['clips']} clips of "
                     f"{_few(person['signers'])} ({person['how']}, one measurement: give --loso for a spread)")
    else:
        lines.append(f"  on a new person: {person['how']}")
    for k, figures in (card.get("after_enrollment") or {}).items():
        lines.append(f"  after enrolling {k} clip{'s' if str(k) != '1' else ''} per sign: top-1 "
                     f"{figures['mean']:.1%} on average ({figures.get('min', figures['mean']):.0%} to "
                     f"{figures.get('max', figures['mean']):.0%})")
    if card.get("enrolled"):
        enrolled = card["enrolled"]
        lines.append(f"  personal model of {enrolled.get('signer') or 'one person'}: "
                     f"{len(enrolled.get('signs') or [])} signs enrolled")
    unknown = card.get("unknown")
    if unknown:
        lines.append(f"  \"not a sign\": answers below {unknown['threshold']:.2f} confidence are unknown "
                     f"(keeps {unknown.get('keeps', 0.95):.0%} of {unknown.get('calibrated_on', 'validation clips')})")
    return "\n".join(lines)


def _few(items: list[str], k: int = 6) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")


def expected_accuracy(card: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    """One line a page shows beside the model: the top-1 a person can expect. A personal model's is its base
    model's benchmark after enrolling as many clips per sign (`base`: the base model's card), else the base's
    figure on a new person as a floor; a figure never measured is said to be so."""
    if card.get("enrolled"):
        counts = list(((card["enrolled"] or {}).get("signs") or {}).values()) or [0]
        after = (base or {}).get("after_enrollment") or card.get("after_enrollment") or {}
        ks = sorted((int(k) for k in after if str(k).isdigit() and int(k) <= min(counts)), reverse=True)
        if ks:
            figures = {str(k): v for k, v in after.items()}[str(ks[0])]
            return (f"top-1 {figures['mean']:.1%} expected (benchmark: enrolling {ks[0]} clip"
                    f"{'s' if ks[0] != 1 else ''} per sign on people the base model never saw)")
        floor = expected_accuracy(base) if base else "not measured"
        return f"not measured for this person; the base model's: {floor}"
    person = card.get("new_person") or {}
    if "top1_mean" in person:
        return (f"top-1 {person['top1_mean']:.1%} on a new person ({person['top1_min']:.0%} to "
                f"{person['top1_max']:.0%}, leave one signer out, {person['folds']} signers)")
    if "top1" in person:
        return f"top-1 {person['top1']:.1%} on a new person ({person['clips']} clips of {_few(person['signers'])})"
    return "not measured (train with --test-signers, or make the card from a --loso run)"
