"""The Lightning pieces of a fit: module, data module and progress bar, as module-level classes.

Importing this module imports Lightning (about a second), so only `fit.fit` imports it, when a fit starts:
`signrec --help` and the layers that only load models never pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from signrec.train.config import TrainConfig
from signrec.train.data import Featurize


def quiet() -> None:
    """Lightning's advice that does not apply here, kept off the terminal; called at every fit, since warning
    filters set once at import are reset by whoever catches warnings in between (pytest, for one)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*directory .* exists and is not empty.*")  # --resume
    # SignModule._step logs training metrics without sync_dist on purpose: each process's own mean is enough for
    # a progress display, and syncing them would cost a collective per epoch. Lightning warns of exactly that.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('train_")


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class SignModule(L.LightningModule):
    """Cross-entropy training of any (x, mask) -> logits network."""

    def __init__(self, model: nn.Module, config: TrainConfig):
        super().__init__()
        self.model = model
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(x, mask)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, mask, y = batch
        smoothing = self.config.label_smoothing if stage == "train" else 0.0
        if stage == "train" and self.config.mixup > 0:
            lam = float(torch.distributions.Beta(self.config.mixup, self.config.mixup).sample())
            perm = torch.randperm(len(y))
            logits = self.model(lam * x + (1 - lam) * x[perm], mask | mask[perm])
            loss = (lam * F.cross_entropy(logits, y, label_smoothing=smoothing)
                    + (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=smoothing))
        else:
            logits = self.model(x, mask)
            loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        sync = stage != "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y),
                 sync_dist=sync)
        self.log(f"{stage}_acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y),
                 sync_dist=sync)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def on_train_start(self) -> None:
        # Lightning restores EarlyStopping's patience from the checkpoint; `--resume --patience` must win.
        self.trainer.early_stopping_callback.patience = self.config.patience

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        c = self.config
        if c.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=c.lr, momentum=c.momentum, nesterov=True,
                                  weight_decay=c.weight_decay)
        else:
            opt = torch.optim.AdamW(self.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        if c.schedule == "constant":
            return opt
        if c.schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, c.patience // 3))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if c.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=total)
        else:
            warmup = 0 if c.schedule == "cosine" else min(total // 2, c.warmup_epochs * total // c.max_epochs)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(warmup, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

class FeatureData(L.LightningDataModule):
    """Validation features computed once; training features recomputed each epoch from fresh augmentation.

    The next epoch's augmented features are prepared in a background thread while this epoch trains
    (torch and numpy release the GIL), so on two cores data preparation costs little wall time.
    Each epoch's augmentation is seeded by (seed, epoch): the same run gives the same data.
    """

    def __init__(self, train: tuple[list[np.ndarray], list[int]], val: tuple[list[np.ndarray], list[int]],
                 featurize: Featurize, augmentation: Callable | None, batch_size: int, seed: int):
        super().__init__()
        self.train_arrays, self.train_y = train[0], torch.tensor(train[1])
        self.val_arrays, self.val_y = val[0], torch.tensor(val[1])
        self.featurize, self.augmentation = featurize, augmentation
        self.batch_size, self.seed = batch_size, seed
        self._val: TensorDataset | None = None
        self._train: dict[int, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signrec-augment")

    def _prepare(self, epoch: int) -> TensorDataset:
        arrays = self.train_arrays
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, epoch])
            arrays = [self.augmentation(a, rng) for a in arrays]
        return TensorDataset(*self.featurize(arrays), self.train_y)

    def _epoch_data(self, epoch: int) -> TensorDataset:
        if self.augmentation is None:
            epoch = 0  # the same features every epoch
        if epoch not in self._train:
            self._train[epoch] = self._pool.submit(self._prepare, epoch)
        data = self._train.pop(epoch).result()
        if self.augmentation is None:
            self._train[0] = Future()
            self._train[0].set_result(data)
        else:
            self._train[epoch + 1] = self._pool.submit(self._prepare, epoch + 1)
        return data

    def train_dataloader(self) -> DataLoader:
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        data = self._epoch_data(epoch)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(data, batch_size=self.batch_size, shuffle=True, generator=gen,
                          drop_last=len(data) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        if self._val is None:
            self._val = TensorDataset(*self.featurize(self.val_arrays), self.val_y)
        return DataLoader(self._val, batch_size=256)

    def teardown(self, stage: str) -> None:
        for future in self._train.values():
            future.cancel()
        self._train.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

class StderrProgressBar(TQDMProgressBar):
    """Lightning's progress bars on stderr (its own go to stdout), so that stdout carries only results."""

    def init_train_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self):
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()
