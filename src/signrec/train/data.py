"""The data side of training: the split, and landmarks turned into feature tensors in bounded chunks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from signrec.landmarks import dataset
from signrec.landmarks.dataset import Sample, Split
from signrec.landmarks.store import LandmarkStore
from signrec.model.runtime import pad_batch
from signrec.train.config import TrainConfig


def as_store(data: str | os.PathLike | LandmarkStore) -> LandmarkStore:
    """A store as it is; a shard store's folder or URL opened as one, streamed (landmarks/shards.py); another path
    (labels.csv or folder, of landmarks or of videos) opened as a folder store, videos extracted once into the
    cache."""
    if isinstance(data, (str, os.PathLike)):
        from signrec.video.batch import open_store

        return open_store(data)
    return data


def make_split(samples: Sequence[Sample], config: TrainConfig) -> Split:
    """Signer-independent when signers are known; stratified random otherwise."""
    if config.test_signers or config.val_signers:
        return dataset.split_by_signer(samples, config.test_signers, config.val_signers)
    signers = dataset.signers_of(samples)
    if len(signers) >= 3:
        return dataset.split_by_signer(samples, [signers[-1]], [signers[-2]])
    return dataset.split_stratified(samples, config.val_fraction, config.test_fraction, config.seed)


Featurize = Callable[[Sequence[np.ndarray]], tuple[torch.Tensor, torch.Tensor]]
"""Landmark arrays -> (features (N, T, F) float32, valid mask (N, T) bool)."""


class SpecFeaturizer:
    """The FeatureExtractor applied to many sequences in length-sorted chunks (little padding, bounded memory)."""

    def __init__(self, spec: Any, chunk: int = 64):
        from signrec.model.features import FeatureExtractor

        self.module = FeatureExtractor(spec).eval()
        self.chunk = chunk

    @torch.no_grad()
    def __call__(self, arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.argsort([len(a) for a in arrays], kind="stable")
        feats: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        for start in range(0, len(order), self.chunk):
            batch, lengths = pad_batch([arrays[i] for i in order[start:start + self.chunk]])
            x, m = self.module(torch.from_numpy(batch), torch.from_numpy(lengths))
            feats.append(x)
            masks.append(m)
        return _stack_in_order(feats, masks, order)


def _stack_in_order(feats: list[torch.Tensor], masks: list[torch.Tensor],
                    order: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(f.shape[1] for f in feats)
    n = sum(len(f) for f in feats)
    x = torch.zeros((n, t, feats[0].shape[2]), dtype=torch.float32)
    mask = torch.zeros((n, t), dtype=torch.bool)
    idx = torch.from_numpy(order)
    start = 0
    for f, m in zip(feats, masks, strict=True):
        rows = idx[start:start + len(f)]
        x[rows, : f.shape[1]] = f
        mask[rows, : m.shape[1]] = m
        start += len(f)
    return x, mask
