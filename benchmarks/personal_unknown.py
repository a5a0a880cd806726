"""Does a personal model say "not one of mine" better than its base model?

    python benchmarks/personal_unknown.py [--folds 4] [--k 3] [--seed 0] [--work DIR]

On lsa64_hands (real hand landmarks, no video), for each of the first N leave-one-signer-out folds: a base model
(`train`'s defaults, the next signer early-stops it and calibrates its threshold) learns 20 of the 25 signs from
the other signers; the 5 signs in HELD_OUT (chosen before measuring: the last five in sorted order) are never
trained on. The test signer enrolls k repetitions of each of the 20 signs (`enroll`, defaults; its threshold is
calibrated on those takes, each scored by a head fitted without it). Known: the test signer's other repetitions
of the 20 signs. Unknown: all the test signer's clips of the 5 held-out signs. For the base and the personal
model: top-1 on the known clips, AUROC of the max probability (known against unknown), and at the model's own
calibrated threshold the share of known clips kept and of unknown clips rejected.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from signrec import landmarks
from signrec.landmarks import dataset, formats
from signrec.landmarks.store import FolderStore, load_all
from signrec.model import unknown
from signrec.model.artifact import Classifier
from signrec.train.config import TrainConfig
from signrec.train.enroll import enroll
from signrec.train.run import train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def measure(model: Path, known: list[np.ndarray], known_y: list[str], other: list[np.ndarray]) -> dict[str, float]:
    classifier = Classifier.load(model)
    limit = unknown.threshold(classifier.meta)
    p_known, p_other = classifier.predict_proba(known).max(1), classifier.predict_proba(other).max(1)
    pred = [classifier.labels[i] for i in classifier.predict_proba(known).argmax(1)]
    return {"top1": float(np.mean([p == y for p, y in zip(pred, known_y, strict=True)])),
            "auroc": float(roc_auc_score(np.r_[np.ones(len(p_known)), np.zeros(len(p_other))], np.r_[p_known, p_other])),
            "kept": float(np.mean(p_known >= limit)), "rejected": float(np.mean(p_other < limit)), "threshold": limit}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4, help="the first N test signers (001, 002, ...)")
    parser.add_argument("--k", type=int, default=3, help="repetitions per sign the test signer enrolls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="signrec-personal-unknown-"))
    target = work / "lsa64_landmarks"
    if not (target / "labels.csv").is_file():
        formats.import_hands(DATA / "lsa64_hands" / "labels.csv", target)
    samples, arrays, bad = load_all(FolderStore.open(target / "labels.csv"))
    by_key = dict(zip((s.key for s in samples), arrays, strict=True))
    labels = dataset.labels_of(samples)
    held_out = labels[-5:]
    signers = dataset.signers_of(samples)
    print(f"# {len(samples)} clips ({len(bad)} unusable), signs never trained on: {held_out}; k = {args.k}, "
          f"seed {args.seed}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for i, test in enumerate(signers[: args.folds]):
        val = signers[(i + 1) % len(signers)]
        start = time.perf_counter()
        config = TrainConfig(seed=args.seed, test_signers=(test,), val_signers=(val,))
        base_data = work / f"base-{test}"
        if not (base_data / "labels.csv").is_file():
            dataset.write_labels(base_data / "labels.csv", [s for s in samples if s.label not in held_out])
        train(base_data / "labels.csv", work / f"run-{test}", config, progress=False)
        mine = [s for s in samples if s.signer == test]
        reps = sorted({s.extra["repetition"] for s in mine})
        enrolled = [s for s in mine if s.label not in held_out and s.extra["repetition"] in reps[: args.k]]
        person = work / f"person-{test}"
        for s in enrolled:
            landmarks.save(person / s.label / Path(s.path).name, by_key[s.key])
        enroll(work / f"run-{test}" / "model", person, work / f"mine-{test}", signer=test)
        known = [s for s in mine if s.label not in held_out and s not in enrolled]
        other = [s for s in mine if s.label in held_out]
        args_m = ([by_key[s.key] for s in known], [s.label for s in known], [by_key[s.key] for s in other])
        for name, model in (("base", work / f"run-{test}" / "model"), ("personal", work / f"mine-{test}")):
            r = {"signer": test, "model": name, **measure(model, *args_m)}
            rows.append(r)
            print(f"{test} {name}: top-1 {r['top1']:.1%}, AUROC {r['auroc']:.3f}, threshold {r['threshold']:.2f}: "
                  f"known kept {r['kept']:.0%}, unknown rejected {r['rejected']:.0%} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print("\n| model | signers | top-1 on known | AUROC known vs 5 unseen signs | known kept | unknown rejected |")
    print("|---|---|---|---|---|---|")
    for name in ("base", "personal"):
        mine = [r for r in rows if r["model"] == name]
        print(f"| {name} | {' '.join(r['signer'] for r in mine)} | {np.mean([r['top1'] for r in mine]):.1%} | "
              f"{np.mean([r['auroc'] for r in mine]):.3f} ({min(r['auroc'] for r in mine):.3f}-"
              f"{max(r['auroc'] for r in mine):.3f}) | {np.mean([r['kept'] for r in mine]):.0%} | "
              f"{np.mean([r['rejected'] for r in mine]):.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
