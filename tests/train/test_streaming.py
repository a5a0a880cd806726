"""Training that streams a shard store: the same steps for every reader, and a run end to end on real sequences."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from learning_data import lsa64_subset
from signrec.evaluate.report import evaluate
from signrec.landmarks.shards import ShardStore, pack
from signrec.model.artifact import Classifier
from signrec.train import TrainConfig, streaming, train


@pytest.fixture(scope="module")
def lsa64(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 real LSA64 signs x 8 signers x 5 repetitions = 200 sequences as a landmark folder."""
    return lsa64_subset(shared_data, tmp_path_factory.mktemp("lsa64"))


def test_every_reader_of_a_partitioned_epoch_takes_the_same_number_of_steps(lsa64, tmp_path, monkeypatch):
    pack(lsa64, tmp_path / "s", shard_mb=1, progress=False)
    store = ShardStore(tmp_path / "s")
    part = streaming.StreamedPart.of(store, store.samples, {label: i for i, label in enumerate(store.labels())})

    def featurize(arrays):
        return torch.zeros(len(arrays), 1), torch.ones(len(arrays), 1, dtype=torch.bool)

    counts = []
    for reader in range(3):  # as DDP ranks do: three readers, each told it is one of three
        monkeypatch.setattr(streaming, "_partition", lambda r=reader: (r, 3))
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
        counts.append(sum(1 for _ in streaming.ShardBatches(part, featurize, None, 16, 0, 0)))
    assert counts == [len(streaming.ShardBatches(part, featurize, None, 16, 0, 0))] * 3 == [5] * 3


def test_training_streams_a_store(lsa64, tmp_path):
    pack(lsa64, tmp_path / "s", shard_mb=1, progress=False)
    config = TrainConfig(max_epochs=6, patience=6, test_signers=("008",), val_signers=("007",),
                         hparams={"hidden": 48})
    metrics = train(tmp_path / "s", tmp_path / "run", config, progress=False)
    assert metrics is not None and metrics["test"]["n"] == 25 and metrics["val"]["n"] == 25
    assert metrics["epochs"] == 6 and metrics["test"]["top1"] > 0.2  # chance is 0.2 with 5 signs
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def tiny_store(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 real LSA64 signs x 4 signers x 2 repetitions, packed into several small shards."""
    folder = tmp_path_factory.mktemp("tiny")
    csv_path = lsa64_subset(shared_data, folder, signs=("Accept", "Food", "Green"),
                            signers=("001", "002", "003", "004"), repetitions=2)
    pack(csv_path, folder / "store", shard_mb=0.2, progress=False)
    return folder / "store"


def _process_tree(root: int) -> list[int]:
    """`root` and every process below it (from /proc: torchrun starts each worker in a session of its own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def test_two_processes_under_torchrun_train_from_shards_and_resume_after_a_kill(tiny_store: Path, tmp_path: Path):
    """The multi-machine path (docs/scale.md) on one machine: torchrun starts 2 DDP processes that stream the
    store; every process of the job is SIGKILLed after a checkpoint, as when a machine goes down; the same
    command plus --resume finishes the run with a usable model."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "signrec.cli", "train", str(tiny_store), "--out", str(run), "--devices", "2",
               "--max-epochs", "2", "--hparam", "hidden=16", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0:
                break
        except (OSError, RuntimeError, EOFError, KeyError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]  # still training: killed mid-run, not after
    for pid in _process_tree(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.communicate()
    assert not (run / "metrics.json").exists() and not (run / "model").exists()

    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)
    assert metrics["epochs"] == 2 and metrics["test"]["n"] == 6
    assert json.loads((run / "config.json").read_text())["config"]["devices"] == 2
    with open(run / "logs" / "metrics.csv", newline="") as fh:
        assert sorted({int(row["epoch"]) for row in csv.DictReader(fh) if row["val_loss"]}) == [0, 1]
    model = Classifier.load(run / "model")
    store = ShardStore(tiny_store)
    proba = model.predict_proba([store.load(store.samples[0])])
    assert proba.shape == (1, 3) and np.isclose(proba.sum(), 1, atol=1e-4)
    # evaluate streams the store; a damaged shard is named among the skipped files and the rest is scored
    shutil.copytree(tiny_store, tmp_path / "damaged")
    shard = tmp_path / "damaged" / store.meta["shards"][1]["name"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    shard.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=shard.name):
        report = evaluate(model, ShardStore(tmp_path / "damaged"))
    assert report["bad_files"] and all(shard.name in reason for reason in report["bad_files"])
    assert report["n"] == 24 - store.meta["shards"][1]["sequences"]


def test_leave_one_signer_out_streams_a_store(tiny_store: Path, tmp_path: Path):
    """--loso on a shard store: each fold streams it; with --jobs the store goes to each fold's process pickled,
    which holds no landmarks."""
    from signrec.train.loso import train_loso

    store = ShardStore(tiny_store)
    assert len(pickle.dumps(store)) < 20_000
    summary = train_loso(str(tiny_store), tmp_path / "loso", TrainConfig(max_epochs=1, hparams={"hidden": 16}))
    assert summary is not None and summary["data"] == str(tiny_store)
    assert [(row["signer"], row["n"]) for row in summary["folds"]] == [("001", 6), ("002", 6), ("003", 6), ("004", 6)]
    assert (tmp_path / "loso" / "fold-003" / "model" / "model.safetensors").is_file()
