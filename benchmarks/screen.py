"""Leave-one-signer-out screening of feature and training variants, every fold a job in a small process pool.

    python benchmarks/screen.py --data lsa64 --variant hand_frame:features.hand_frame=true --seeds 0 --jobs 2

A variant is NAME:key=value,key=value with keys `features.FIELD`, `hparams.NAME` or a TrainConfig field
(values parsed as JSON, else kept as text); "base" with no overrides is the defaults. Jobs run seed by
seed, fold by fold, every variant of a fold together, so that a screen stopped early still compares the
variants on the same folds; each result is appended as a JSON line to --log as it comes, and a per-fold table is printed at the end. The folds and the training are
those of benchmarks/accuracy.py (`train_split`, the next signer validates).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import lsa64_landmarks  # noqa: E402
from signrec.landmarks import dataset  # noqa: E402
from signrec.landmarks.store import FolderStore, load_all  # noqa: E402
from signrec.train.config import TrainConfig  # noqa: E402
from signrec.train.run import train_split  # noqa: E402
from signrec.train.run_folder import RunFolder  # noqa: E402

_STATE: dict = {}


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    overrides: dict = {"features": {}, "hparams": {}}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        group, _, field = key.partition(".")
        if field:
            overrides[group][field] = parsed
        else:
            overrides[key] = parsed
    return name, overrides


def _load(labels_csv: str) -> None:
    samples, loaded, bad = load_all(FolderStore.open(Path(labels_csv)))
    _STATE["arrays"] = dict(zip((s.key for s in samples), loaded, strict=True))
    _STATE["labels"] = dataset.labels_of(samples)
    _STATE["folds"] = dict(dataset.loso_folds(samples))


def _fold(name: str, overrides: dict, seed: int, signer: str, work: str) -> dict:
    config = TrainConfig(seed=seed, **overrides)
    start = time.perf_counter()
    metrics = train_split(_STATE["folds"][signer], _STATE["arrays"], RunFolder(Path(work) / name / f"s{seed}-{signer}"),
                          config, _STATE["labels"], progress=False)
    return {"variant": name, "seed": seed, "signer": signer, "top1": metrics["test"]["top1"],
            "epochs": metrics["epochs"], "seconds": round(time.perf_counter() - start)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("mlr511", "lsa64"), default="lsa64")
    parser.add_argument("--labels", type=Path, help="landmark labels.csv (mlr511: an extraction's; lsa64: converted)")
    parser.add_argument("--variant", nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--signers", nargs="+", help="only these test signers' folds (a partial screen: say so)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--log", type=Path, required=True, help="JSON lines, one a fold; folds already there are skipped")
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="signrec-screen-"))
    if args.data == "mlr511" and not args.labels:
        parser.error("--data mlr511 needs --labels: the labels.csv of its extracted landmarks")
    labels_csv = args.labels or lsa64_landmarks(work)
    _load(str(labels_csv))
    signers = [s for s in _STATE["folds"] if not args.signers or s in args.signers]
    variants = [parse_variant(v) for v in args.variant]
    for _, overrides in variants:
        TrainConfig(**overrides)  # refuse a bad variant before any training
    results = [json.loads(line) for line in args.log.read_text().splitlines()] if args.log.is_file() else []
    done = {(r["variant"], r["seed"], r["signer"]) for r in results if r.get("data") == args.data}
    jobs = [(name, o, seed, signer) for seed in args.seeds for signer in signers for name, o in variants
            if (name, seed, signer) not in done]  # already in the log: a stopped screen goes on where it was
    with ProcessPoolExecutor(args.jobs, initializer=_load, initargs=(str(labels_csv),)) as pool:
        futures = [pool.submit(_fold, *job, str(work)) for job in jobs]
        for future in as_completed(futures):
            r = future.result()
            results.append(r)
            with args.log.open("a") as log:
                log.write(json.dumps({**r, "data": args.data, "time": time.strftime("%H:%M:%S")}) + "\n")
            print(json.dumps(r), flush=True)
    print(f"\n| {args.data} LOSO | seed | " + " | ".join(signers) + " | mean |")
    print("|---|---|" + "---|" * (len(signers) + 1))
    for name, _ in variants:
        for seed in args.seeds:
            row = {r["signer"]: r["top1"] for r in results if r["variant"] == name and r["seed"] == seed}
            cells = " | ".join(f"{row[s]:.0%}" if s in row else "" for s in signers)
            print(f"| {name} | {seed} | {cells} | {np.mean(list(row.values())):.1%} |")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
