"""Leave one signer out: one run per signer, tested on that signer, and a table with the mean: what a new
person can expect. Folds can train side by side, one process each (--jobs)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
from typing import Any

import numpy as np

from signrec import SignrecError
from signrec.evaluate.card import model_card
from signrec.files import write_json, write_text
from signrec.landmarks import dataset
from signrec.landmarks.shards import ShardStore
from signrec.landmarks.store import LandmarkStore, load_all
from signrec.model.artifact import Classifier
from signrec.train.config import TrainConfig
from signrec.train.data import as_store
from signrec.train.run import duration, say_left_out, train_split
from signrec.train.run_folder import RunFolder, is_global_zero


# ---- leave one signer out ------------------------------------------------------------------------
def train_loso(data: str | os.PathLike | LandmarkStore, out: str | os.PathLike, config: TrainConfig = TrainConfig(),
               resume: bool = False, progress: bool = False, jobs: int = 1) -> dict[str, Any] | None:
    """One run per signer, tested on that signer; a summary table with the mean over folds.

    `jobs` > 1 trains that many folds at once, each in its own process with `config.threads` torch threads
    (the folds are independent and small, so this fills the cores better than more threads for one fold).
    """
    if jobs < 1:
        raise SignrecError(f"--jobs must be >= 1, got {jobs}")
    if jobs > 1 and config.devices * config.num_nodes > 1:
        raise SignrecError("--jobs trains folds side by side, one process each; it can not be combined with "
                           "DDP (--devices/--num-nodes > 1)")
    run = RunFolder(out)
    run.check(config, resume)
    store = as_store(data)
    if isinstance(store, ShardStore):  # each fold streams it, as a single run does
        bad = say_left_out(store, [])
    else:
        _kept, arrays, bad = load_all(store)  # read here only to say what is left out; each fold's process reads it
        del arrays
        bad = say_left_out(store, bad)
    folds = [signer for signer, _split in dataset.loso_folds(store.samples)]
    results: dict[str, dict[str, Any] | None] = {}
    for signer in folds:
        done = run.fold(signer).metrics
        if resume and done.is_file():
            results[signer] = json.loads(done.read_text(encoding="utf-8"))
    todo = [signer for signer in folds if signer not in results]
    if resume and not todo:
        raise SignrecError(f"{out} is complete: all {len(folds)} folds are trained; to train again, choose another "
                           "--out")
    if is_global_zero():
        write_json(run.config, {"config": config.to_dict(), "data": store.name, "loso": True})

    def report(signer: str, metrics: dict[str, Any] | None) -> None:
        results[signer] = metrics
        if metrics is not None:
            print(f"fold {signer}: top-1 {metrics['test']['top1']:.1%} ({metrics['epochs']} epochs, "
                  f"{duration(metrics['fit_seconds'])})", file=sys.stderr, flush=True)

    if jobs > 1 and len(todo) > 1:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from multiprocessing import get_context

        workers = min(jobs, len(todo))
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_fold_worker_init,
                                 initargs=(store, bad)) as pool:
            # A fold is handed out only when a worker is free: on Ctrl+C (which reaches the workers too, and stops
            # their folds at a checkpoint) no queued fold starts afterwards, so the run ends at once.
            waiting = iter(todo)
            running = {pool.submit(_fold_worker, s, run, config, resume): s for s in itertools.islice(waiting, workers)}
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    report(running.pop(future), future.result())
                    if (signer := next(waiting, None)) is not None:
                        running[pool.submit(_fold_worker, signer, run, config, resume)] = signer
    elif todo:
        _fold_worker_init(store, bad)
        try:
            for signer in todo:
                report(signer, _fold_worker(signer, run, config, resume, progress))
        finally:
            _FOLD_DATA.clear()
    if not is_global_zero():
        return None
    rows = []
    for signer in folds:
        metrics = results.get(signer)
        if metrics is not None:
            test = metrics["test"]
            rows.append({"signer": signer, "n": test["n"], "top1": test["top1"], "top5": test["top5"],
                         "macro_f1": test["macro_f1"], "epochs": metrics["epochs"],
                         "fit_seconds": metrics["fit_seconds"]})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("top1", "top5", "macro_f1", "epochs", "fit_seconds")}
    summary = {"folds": rows, "mean": mean, "config": config.to_dict(), "data": store.name}
    write_json(run.loso_json, summary)
    write_text(run.loso_md, loso_table(summary) + "\n")
    for signer in folds:  # each fold's model card says what the recipe gives on a new person: the spread over all
        if results.get(signer) is not None:
            fold = Classifier.load(run.fold(signer).model)
            card = model_card(fold.describe(), summary)
            if fold.meta.get("card") != card:  # a resumed run leaves finished folds as they were
                fold.meta["card"] = card
                fold.save_meta(run.fold(signer).model)
    return summary


_FOLD_DATA: dict[str, Any] = {}
"""The dataset of a LOSO run, loaded once per process (the parent, or each --jobs worker)."""


def _fold_worker_init(store: LandmarkStore, bad: list[str]) -> None:
    """`bad`: what the parent found left out of `store`, for each fold's split.json. A shard store is not read
    here: each fold streams it."""
    if isinstance(store, ShardStore):
        kept, arrays = store.samples, store
    else:
        kept, loaded, _bad = load_all(store)
        arrays = dict(zip((s.key for s in kept), loaded, strict=True))
    _FOLD_DATA.update(samples=kept, arrays=arrays, bad=bad, labels=dataset.labels_of(kept),
                      made=store.landmark_models, data=store.name)


def _fold_worker(signer: str, run: RunFolder, config: TrainConfig, resume: bool,
                 progress: bool = False) -> dict[str, Any] | None:
    """Train and test the fold that holds `signer` out (its metrics; None on DDP ranks other than 0); with
    `resume`, a fold that was begun continues (from its last checkpoint, if an epoch finished)."""
    d = _FOLD_DATA
    split = dict(dataset.loso_folds(d["samples"]))[signer]
    fold = run.fold(signer)
    fold_config = dataclasses.replace(config, test_signers=(signer,), val_signers=tuple(dataset.signers_of(split.val)))
    return train_split(split, d["arrays"], fold, fold_config, d["labels"], skipped=d["bad"], data=d["data"],
                       landmark_models=d["made"], resume=resume and fold.config.is_file(),
                       progress=progress)


def loso_table(summary: dict[str, Any]) -> str:
    lines = ["| test signer | clips | top-1 | top-5 | macro-F1 | epochs | fit s |", "|---|---|---|---|---|---|---|"]
    for r in summary["folds"]:
        lines.append(f"| {r['signer']} | {r['n']} | {r['top1']:.1%} | {r['top5']:.1%} | {r['macro_f1']:.3f} "
                     f"| {r['epochs']} | {r['fit_seconds']:.1f} |")
    m = summary["mean"]
    lines.append(f"| **mean** | | **{m['top1']:.1%}** | {m['top5']:.1%} | {m['macro_f1']:.3f} | {m['epochs']:.0f} "
                 f"| {m['fit_seconds']:.1f} |")
    return "\n".join(lines)
