"""Training: a Lightning loop on landmark datasets, signer-independent splits, LOSO and DDP.

    signrec train DATA --out RUN                                   # DATA: labels.csv of landmarks or videos
    signrec train DATA --out RUN --test-signers user08 --val-signers user07
    signrec train DATA --out RUN --loso                            # leave-one-signer-out, one fold per signer
    signrec train DATA --out RUN --loso --jobs 2                   # two folds at a time, one process each

The split defaults to signer-independent (last signer tests, the one before validates) when the dataset has a
`signer` column, else stratified random. A video dataset is extracted first, once (video.batch.open_dataset).

A run folder (run_folder.RunFolder) holds config.json, split.json, metrics.json, logs/metrics.csv,
learning_curves.png, checkpoints/{best,last}.ckpt (last: the last finished epoch; `--resume` continues from it with
the saved config and split) and the model artifact in RUN/model. With --loso (loso.py): RUN/config.json,
RUN/fold-<signer>/ per fold plus loso.json and loso.md (table + mean); `--loso --resume` keeps finished folds and
continues or trains the others.

Features are computed outside the network during training: validation data once, training data once per epoch
after fresh augmentation of the raw landmarks, so an epoch is a few fixed-size tensor batches.

Several processes (DDP): `--devices N` starts N processes on this machine (CPU: gloo backend). Across machines,
start one copy per machine and let the launcher set the rendezvous, e.g. with torchrun on each of 2 nodes:

    torchrun --nnodes 2 --nproc-per-node 4 --node-rank $NODE_RANK --master-addr $HEAD --master-port 29500 \\
        -m signrec.cli train DATA --out RUN --devices 4 --num-nodes 2

or under SLURM (Lightning reads SLURM_* itself): in an sbatch script with `--nodes=2 --ntasks-per-node=4`,
    srun signrec train DATA --out RUN --devices 4 --num-nodes 2
RUN must be on storage all nodes share; only global rank 0 writes to it. docs/scale.md has the whole path,
resuming after a lost machine included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from signrec import SignrecError
from signrec.files import write_json
from signrec.landmarks import dataset
from signrec.landmarks.dataset import Sample, Split
from signrec.landmarks.shards import ShardStore
from signrec.landmarks.store import LandmarkStore, load_all
from signrec.model import unknown
from signrec.model.artifact import Classifier, package_versions
from signrec.train.config import TrainConfig
from signrec.train.data import SpecFeaturizer, as_store, make_split
from signrec.train.fit import fit, torch_threads
from signrec.train.run_folder import RunFolder, is_global_zero
from signrec.train.streaming import Part, StreamedPart, predict_part


def say_left_out(store: LandmarkStore, bad: Sequence[str]) -> list[str]:
    """Say on the terminal, once (not on every DDP rank), what of the data is left out (videos that could not be
    extracted, unreadable files, nothing detected) or used once; returns what was left out, for split.json."""
    skipped = [*store.failed, *bad]
    if is_global_zero():
        for note in [*store.notes, *(f"skipping {reason}" for reason in skipped)]:
            print(f"warning: {note}", file=sys.stderr, flush=True)
    return skipped


# ---- one run -------------------------------------------------------------------------------------
def train(data: str | os.PathLike | LandmarkStore, out: str | os.PathLike, config: TrainConfig = TrainConfig(),
          resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Train on `data` (a landmark store, or a dataset path opened as one) into the run folder `out`; returns
    metrics with the split and the model folder (None on DDP ranks other than 0). With `progress`, the split and
    Lightning's progress bars are shown on stderr."""
    run = RunFolder(out)
    run.check(config, resume)
    store = as_store(data)
    source: dict[str, np.ndarray] | ShardStore
    if isinstance(store, ShardStore):  # streamed, never all in memory
        samples, bad, source = store.samples, say_left_out(store, []), store
    else:
        samples, arrays, bad = load_all(store)
        bad = say_left_out(store, bad)
        source = dict(zip((s.key for s in samples), arrays, strict=True))
    split = run.saved_split(samples) if resume else make_split(samples, config)
    if progress and is_global_zero():
        print(f"split: {split.describe()}", file=sys.stderr, flush=True)
    metrics = train_split(split, source, run, config, labels=dataset.labels_of(samples), skipped=bad, data=store.name,
                          landmark_models=store.landmark_models, resume=resume, progress=progress)
    return None if metrics is None else {**metrics, "split": split.summary(), "model": str(run.model)}


def train_split(split: Split, arrays: dict[str, np.ndarray] | ShardStore, run: RunFolder, config: TrainConfig,
                labels: list[str], skipped: Sequence[str] = (), data: str = "",
                landmark_models: dict[str, Any] | None = None, resume: bool = False,
                progress: bool = True) -> dict[str, Any] | None:
    """Train, evaluate and save the artifact for one split; `arrays` maps sample key -> landmarks, or is the shard
    store to stream them from, made with `landmark_models` (a LandmarkStore's; None: MediaPipe Holistic as
    shipped)."""
    from signrec.evaluate.card import model_card
    from signrec.evaluate.metrics import score
    from signrec.evaluate.plots import plot_learning_curves
    from signrec.model import networks as models
    from signrec.train.augment import default_augmentation

    if not split.train:
        raise SignrecError("the training set is empty")
    spec = config.feature_spec()
    hparams = {**models.default_hparams(config.model), **config.hparams}
    index = {label: i for i, label in enumerate(labels)}

    def part(samples: list[Sample]) -> Part:
        if isinstance(arrays, ShardStore):
            return StreamedPart.of(arrays, samples, index)
        return [arrays[s.key] for s in samples], [index[s.label] for s in samples]

    torch.manual_seed(config.seed)
    model = models.build_model(config.model, spec.n_features, len(labels), **hparams)
    run.check(config, resume)
    if is_global_zero():
        run.path.mkdir(parents=True, exist_ok=True)
        if resume:  # the overrides (--resume may change) hold for the rest of the run, and a later resume
            saved = run.read_json(run.config, "can not resume")
            write_json(run.config, {**saved, "config": config.to_dict()})
        else:
            write_json(run.config, {"config": config.to_dict(), "data": data, "labels": labels,
                                             "feature_spec": spec.to_dict(), "hparams": hparams,
                                             "versions": package_versions()})
            write_json(run.split, {**split.summary(), "skipped_files": list(skipped),
                                            **{name: [s.key for s in getattr(split, name)]
                                               for name in ("train", "val", "test")}})
    result = fit(model, part(split.train), part(split.val), SpecFeaturizer(spec), config, run,
                 augmentation=default_augmentation() if config.augment else None, resume=resume,
                 progress=progress)
    if not result.is_rank_zero:
        return None
    classifier = Classifier(labels, spec, config.model, hparams, model=result.model.eval(),
                            meta={"training": {"config": config.to_dict(), "data": data, "split": split.summary()},
                                  "landmarks": landmark_models or {}})
    metrics: dict[str, Any] = {"epochs": result.epochs, "best_epoch": result.best_epoch,
                               "stopped_early": result.stopped_early, "fit_seconds": round(result.seconds, 2)}
    for name in ("val", "test"):
        samples = getattr(split, name)
        if samples:
            held = part(samples)
            with torch_threads(config.threads):
                if isinstance(held, StreamedPart):
                    y, proba = predict_part(classifier.predict_proba, held)
                else:
                    y, proba = np.array(held[1]), classifier.predict_proba(held[0])
            metrics[name] = score(y, proba, labels, per_class=False)
            if name == "val":
                signers = dataset.signers_of(samples)
                classifier.meta["unknown"] = unknown.calibrate(proba, f"signers {', '.join(signers)}" if signers
                                                               else "a random share of the training data")
    classifier.meta["metrics"] = metrics
    classifier.meta["card"] = model_card(classifier.describe())
    classifier.save(run.model)
    write_json(run.metrics, metrics)
    plot_learning_curves(run.log_csv, run.curves)
    return metrics


def duration(seconds: float) -> str:
    """A wall time as a person reads it: tenths of a second when short, minutes when long."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


