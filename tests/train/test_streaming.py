"""Training that streams a shard store: the same steps for every reader, and a run end to end on real sequences."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from learning_data import lsa64_subset
from signrec.landmarks.shards import ShardStore, pack
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
