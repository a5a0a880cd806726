"""Base models for benchmarks/enroll.py: leave-one-signer-out folds trained side by side, one process each.

    python benchmarks/enroll_bases.py pack --mlr511 LANDMARKS/labels.csv --lsa64 LANDMARKS/labels.csv --out DIR
    python benchmarks/enroll_bases.py train DIR --out BASES --jobs 16 [--seeds 0 1] [--only NAME ...] [--draws 3]

`pack` stores each dataset as one .npz holding only the landmarks the default feature spec reads (hands, the
compact pose, lips, eyebrows, nose and their mirror twins, where any clip has them), so that both sets fit in the 64 MiB a run on a lent
machine may carry; features of a packed clip equal those of the full one (checked on packing). `train` needs no
MediaPipe or OpenCV and writes each base model as BASES/NAME/{weights.npz,meta.json}; benchmarks/enroll.py turns
them into model folders. It trains, with `signrec train`'s defaults (signrec.train.fit, the same augmentation):
- enroll-DATA-sSEED-SIGNER: every leave-one-signer-out fold of mlr511 and lsa64 (the next signer validates);
- unknown-mlr511-sSEED-SIGNER: the same mlr511 folds with 3 of the 10 signs left out (UNKNOWN_SIGNS);
- newsign-mlr511-sSEED: all mlr511 signers but user08 (who validates), for signs that are in no base model.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

UNKNOWN_SIGNS = ("Go", "Please", "UAE")
"""The mlr511 signs the `unknown-*` base models never see (chosen before any measurement)."""


def _stub_missing(names: tuple[str, ...]) -> None:
    """Let signrec import on a machine without OpenCV or safetensors: training here reads no video and saves
    no model folder, so those modules are only named, never used."""

    class Missing(types.ModuleType):
        def __getattr__(self, attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return type(attr, (Exception,), {})

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = Missing(name)


def used_points() -> np.ndarray:
    """Landmark indices the default feature spec reads, with their mirror twins (mirroring swaps them)."""
    from signrec.landmarks import POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER
    from signrec.model.features import MIRROR_INDEX, subset_indices

    keep = set(subset_indices("compact").tolist()) | {POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER}
    keep |= {int(MIRROR_INDEX[i]) for i in keep}
    return np.array(sorted(keep))


def pack(csv_path: Path, out: Path) -> None:
    """One dataset -> out (.npz): the used points of every clip, concatenated, with labels and signers."""
    from signrec import landmarks
    from signrec.files import atomic_path
    from signrec.landmarks import dataset
    from signrec.model.features import FeatureSpec, featurize

    samples = dataset.read_labels(csv_path)
    arrays = [landmarks.load(s.path) for s in samples]
    index = used_points()
    index = index[np.any([~np.isnan(a[:, index, 0]).all(0) for a in arrays], axis=0)]  # never seen: NaN anyway
    spec = FeatureSpec()
    for a in arrays[:: max(1, len(arrays) // 20)]:
        full, _ = featurize(a, spec)
        packed, _ = featurize(unpack_one(a[:, index], index), spec)
        if not np.allclose(full, packed, equal_nan=True):
            raise SystemExit(f"{csv_path}: packed landmarks give other features; update used_points()")
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez(tmp, points=np.concatenate([a[:, index] for a in arrays]), index=index,
                 offsets=np.cumsum([0] + [len(a) for a in arrays]), labels=np.array([s.label for s in samples]),
                 signers=np.array([s.signer or "" for s in samples]), keys=np.array([s.key for s in samples]))
    print(f"{out}: {len(samples)} clips, {index.size} points a frame, {out.stat().st_size / 2**20:.1f} MiB")


def unpack_one(points: np.ndarray, index: np.ndarray) -> np.ndarray:
    from signrec.landmarks import empty

    out = empty(len(points))
    out[:, index] = points
    return out


def load_packed(path: Path) -> tuple[list[Any], list[np.ndarray]]:
    """A packed dataset -> (samples, full landmark arrays)."""
    from signrec.landmarks.dataset import Sample

    d = np.load(path)
    arrays = [unpack_one(d["points"][a:b], d["index"]) for a, b in zip(d["offsets"][:-1], d["offsets"][1:],
                                                                      strict=True)]
    samples = [Sample(Path(str(k)), str(label), str(signer) or None)
               for k, label, signer in zip(d["keys"], d["labels"], d["signers"], strict=True)]
    return samples, arrays


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    data: str                   # mlr511 or lsa64
    seed: int
    test: str | None            # test signer (None: none held out)
    val: str                    # validation signer
    drop: tuple[str, ...] = ()  # signs left out of training, validation and the label map


def jobs(seeds: list[int]) -> list[Job]:
    """Most useful first, so that a run cut short still leaves whole experiments."""
    from signrec.landmarks.dataset import loso_folds

    def folds(data: str) -> list[tuple[str, str]]:
        signers = {"mlr511": [f"user{i:02d}" for i in range(1, 9)], "lsa64": [f"{i:03d}" for i in range(1, 9)]}
        fake = [_sample(s) for s in signers[data]]
        return [(test, split.val[0].signer) for test, split in loso_folds(fake)]

    out: list[Job] = []
    for seed in seeds:
        for data in ("mlr511", "lsa64"):
            out += [Job(f"enroll-{data}-s{seed}-{t}", data, seed, t, v) for t, v in folds(data)]
        if seed == seeds[0]:
            out.append(Job(f"newsign-mlr511-s{seed}", "mlr511", seed, None, "user08"))
            out += [Job(f"unknown-mlr511-s{seed}-{t}", "mlr511", seed, t, v, UNKNOWN_SIGNS)
                    for t, v in folds("mlr511")]
    return out


def _sample(signer: str) -> Any:
    from signrec.landmarks.dataset import Sample

    return Sample(Path(signer), "x", signer)


_DATA: dict[str, tuple[list[Any], list[np.ndarray]]] = {}


def run_job(job: Job, data_dir: Path, out: Path, max_epochs: int, draws: int) -> dict[str, Any]:
    """Train one base model as `signrec train` would and save its weights (numpy) and description; with `draws`,
    run benchmarks/enroll.py's personal measurement on it too (personal.json)."""
    import torch

    from signrec.files import atomic_path, write_json
    from signrec.landmarks.dataset import labels_of
    from signrec.model import networks as models
    from signrec.train.augment import default_augmentation
    from signrec.train.config import TrainConfig
    from signrec.train.data import SpecFeaturizer
    from signrec.train.fit import fit
    from signrec.train.run_folder import RunFolder

    torch.set_num_threads(1)
    if job.data not in _DATA:
        _DATA[job.data] = load_packed(data_dir / f"{job.data}.npz")
    samples, arrays = _DATA[job.data]
    keep = [i for i, s in enumerate(samples) if s.label not in job.drop]
    labels = labels_of([samples[i] for i in keep])
    index = {label: i for i, label in enumerate(labels)}

    def part(signers: set[str]) -> tuple[list[np.ndarray], list[int]]:
        rows = [i for i in keep if samples[i].signer in signers]
        return [arrays[i] for i in rows], [index[samples[i].label] for i in rows]

    everyone = {s.signer for s in samples}
    train_signers = everyone - {job.test, job.val}
    config = TrainConfig(seed=job.seed, test_signers=(job.test,) if job.test else (), val_signers=(job.val,),
                         max_epochs=max_epochs)
    spec = config.feature_spec()
    hparams = models.default_hparams(config.model)
    torch.manual_seed(config.seed)
    model = models.build_model(config.model, spec.n_features, len(labels), **hparams)
    with tempfile.TemporaryDirectory() as run:
        result = fit(model, part(train_signers), part({job.val}), SpecFeaturizer(spec), config, RunFolder(run),
                     augmentation=default_augmentation(), progress=False)
    folder = out / job.name
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "weights.npz", suffix=".npz") as tmp:
        np.savez(tmp, **{k: v.detach().cpu().numpy() for k, v in result.model.state_dict().items()})
    meta = {**dataclasses.asdict(job), "labels": labels, "train_signers": sorted(train_signers),
            "config": config.to_dict(), "feature_spec": spec.to_dict(), "model": config.model, "hparams": hparams,
            "epochs": result.epochs, "best_epoch": result.best_epoch, "fit_seconds": round(result.seconds, 1)}
    write_json(folder / "meta.json", meta)
    if draws and job.name.startswith("enroll-"):
        from enroll import DEFAULT, personal_fold

        write_json(folder / "personal.json", personal_fold(folder, data_dir, draws, DEFAULT.views))
    return meta


def train_all(data_dir: Path, out: Path, workers: int, seeds: list[int], only: list[str], max_epochs: int,
              draws: int) -> None:
    todo = [j for j in jobs(seeds) if (not only or any(j.name.startswith(o) for o in only))
            and not (out / j.name / "meta.json").is_file()]
    print(f"{len(todo)} base models, {workers} at a time", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_stub_missing,
                             initargs=(("cv2", "safetensors", "safetensors.torch"),)) as pool:
        futures = {pool.submit(run_job, j, data_dir, out, max_epochs, draws): j for j in todo}
        for future in as_completed(futures):
            job = futures[future]
            try:
                meta = future.result()
                print(f"{time.perf_counter() - start:6.0f} s  {job.name}: {meta['epochs']} epochs, "
                      f"{meta['fit_seconds']} s", flush=True)
            except Exception as exc:  # one failed fold must not lose the others
                print(f"{job.name}: FAILED {exc!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--mlr511", type=Path, required=True)
    p.add_argument("--lsa64", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("data", type=Path)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--jobs", type=int, default=2)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    t.add_argument("--only", nargs="*", default=[], help="name prefixes of the base models to train")
    t.add_argument("--max-epochs", type=int, default=40, help="signrec train's default; less only to try it out")
    t.add_argument("--draws", type=int, default=0, help="also measure enrollment on each fold, with these draws")
    args = parser.parse_args()
    _stub_missing(("cv2", "safetensors", "safetensors.torch"))
    if args.command == "pack":
        for name in ("mlr511", "lsa64"):
            pack(getattr(args, name), args.out / f"{name}.npz")
    else:
        train_all(args.data, args.out, args.jobs, args.seeds, args.only, args.max_epochs, args.draws)


if __name__ == "__main__":
    main()
