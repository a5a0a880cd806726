"""Training data streamed from a shard store (landmarks/shards.py), so that memory is bounded by a buffer, not by the dataset.

`train` takes a shard store wherever it takes a landmark folder. The training part of the split is then a
`StreamedPart`: each epoch a DataLoader worker process reads row groups in a seeded order through a shuffle
buffer, augments each sequence (seeded by seed, epoch and worker) and featurises whole batches, while the main
process trains on the batch before; the same overlap the in-memory path gets from its background thread.
Validation streams the same way at every check (its features are not held: at 100x MLR511 they would be 0.8 GB),
and so does the evaluation at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from signrec.landmarks.dataset import Sample
from signrec.landmarks.shards import ShardStore

BUFFER = 512
"""Sequences in the shuffle buffer (about 75 MB of MLR511 landmarks): the bound on memory."""


@dataclass(frozen=True)
class StreamedPart:
    """Some samples of a shard store with their class indices: a part of a split that is read, not held."""

    url: str
    keys: tuple[str, ...]
    targets: dict[str, int]

    @classmethod
    def of(cls, store: ShardStore, samples: Sequence[Sample], index: dict[str, int]) -> StreamedPart:
        return cls(store.url, tuple(s.key for s in samples), {s.key: index[s.label] for s in samples})

    def __len__(self) -> int:
        return len(self.keys)


Part = tuple[list[np.ndarray], list[int]] | StreamedPart
"""Training or validation data: arrays with their class indices, or a part of a shard store to stream."""


def one_thread(_worker: int) -> None:
    """A data worker beside training: one torch thread, so that the two do not fight over the cores."""
    torch.set_num_threads(1)


def _partition() -> tuple[int, int]:
    """This reader's share of the row groups: one of (DDP ranks x DataLoader workers)."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker = get_worker_info()
    workers, wid = (worker.num_workers, worker.id) if worker is not None else (1, 0)
    return rank * workers + wid, world * workers


class ShardBatches(IterableDataset):
    """One epoch of (features, mask, targets) batches from a StreamedPart."""

    def __init__(self, part: StreamedPart, featurize: Callable, augmentation: Callable | None, batch_size: int,
                 seed: int, epoch: int, buffer: int = BUFFER):
        super().__init__()
        self.part, self.featurize, self.augmentation = part, featurize, augmentation
        self.batch_size, self.seed, self.epoch, self.buffer = batch_size, seed, epoch, buffer

    def __len__(self) -> int:
        """Batches an epoch (for this process): Lightning sizes the learning-rate schedule by it."""
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        return max(1, math.ceil(len(self.part) / world / self.batch_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Exactly len(self) batches (the last may be short): DDP ranks, whose shares of the row groups differ by
        up to one, must take as many steps as each other, so a short share goes round again."""
        index, count = _partition()
        store = ShardStore(self.part.url)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        arrays: list[np.ndarray] = []
        targets: list[int] = []
        batches, lap = len(self), 0
        while True:
            read = 0
            for sample, array in store.stream(self.part.keys, seed=(self.seed * 100_003 + self.epoch) * 1_009 + lap,
                                              buffer=self.buffer, part=(index, count)):
                read += 1
                arrays.append(self.augmentation(array, rng) if self.augmentation is not None else array)
                targets.append(self.part.targets[sample.key])
                if len(arrays) == self.batch_size:
                    yield (*self.featurize(arrays), torch.tensor(targets))
                    arrays, targets, batches = [], [], batches - 1
                    if not batches:
                        return
            if not read:  # a share without row groups, or none readable
                return
            if count == 1:  # the only reader: the epoch is the data, its last batch short as in memory
                if arrays:
                    yield (*self.featurize(arrays), torch.tensor(targets))
                return
            lap += 1


def chunks(store: ShardStore, keys: Sequence[str], size: int) -> Iterator[tuple[list[np.ndarray], list[str]]]:
    """The arrays of `keys` in store order, `size` at a time, with their keys."""
    arrays: list[np.ndarray] = []
    names: list[str] = []
    for sample, array in store.stream(keys):
        arrays.append(array)
        names.append(sample.key)
        if len(arrays) == size:
            yield arrays, names
            arrays, names = [], []
    if arrays:
        yield arrays, names


def predict_part(predict_proba: Callable[[list[np.ndarray]], np.ndarray], part: StreamedPart, chunk: int = 256
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(targets, probabilities) of a part, streamed `chunk` sequences at a time; rows in store order."""
    ys, probas = [], []
    for arrays, keys in chunks(ShardStore(part.url), part.keys, chunk):
        probas.append(predict_proba(arrays))
        ys.extend(part.targets[k] for k in keys)
    return np.array(ys), np.concatenate(probas)
