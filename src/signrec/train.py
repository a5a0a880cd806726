"""Training: a Lightning loop on landmark datasets, signer-independent splits, LOSO and DDP.

    signrec train DATA --out RUN                                   # DATA: labels.csv of landmarks or videos
    signrec train DATA --out RUN --test-signers user08 --val-signers user07
    signrec train DATA --out RUN --loso                            # leave-one-signer-out, one fold per signer
    signrec train DATA --out RUN --loso --jobs 2                   # two folds at a time, one process each

The split defaults to signer-independent (last signer tests, the one before validates) when the dataset has a
`signer` column, else stratified random. A video dataset is extracted first, once (extract.ensure_landmarks).

A run folder holds config.json, split.json, metrics.json, logs/metrics.csv, learning_curves.png,
checkpoints/{best,last}.ckpt (last: the last finished epoch; `--resume` continues from it with the saved config
and split) and the model artifact in RUN/model. With --loso: RUN/config.json, RUN/fold-<signer>/ per fold plus
loso.json and loso.md (table + mean); `--loso --resume` keeps finished folds and continues or trains the others.

Features are computed outside the network during training: validation data once, training data once per epoch
after fresh augmentation of the raw landmarks, so an epoch is a few fixed-size tensor batches.

Several processes (DDP): `--devices N` starts N processes on this machine (CPU: gloo backend). Across machines,
start one copy per machine and let the launcher set the rendezvous, e.g. with torchrun on each of 2 nodes:

    torchrun --nnodes 2 --nproc-per-node 4 --node-rank $NODE_RANK --master-addr $HEAD --master-port 29500 \\
        -m signrec.cli train DATA --out RUN --devices 4 --num-nodes 2

or under SLURM (Lightning reads SLURM_* itself): in an sbatch script with `--nodes=2 --ntasks-per-node=4`,
    srun signrec train DATA --out RUN --devices 4 --num-nodes 2
RUN must be on storage all nodes share; only global rank 0 writes to it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from signrec import SignrecError, cli, dataset, landmarks, unknown
from signrec.artifact import Classifier, package_versions, pad_batch
from signrec.dataset import Sample, Split
from signrec.files import write_json, write_text

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("warmup-cosine", "cosine", "onecycle", "plateau", "constant")

FRACTION: cli.Range = (lambda v: 0 <= v < 1, ">= 0 and < 1")
RANGES: dict[str, cli.Range] = {
    "lr": cli.POSITIVE, "weight_decay": cli.NON_NEGATIVE, "warmup_epochs": cli.NON_NEGATIVE,
    "label_smoothing": FRACTION, "mixup": cli.NON_NEGATIVE, "batch_size": cli.AT_LEAST_ONE,
    "max_epochs": cli.AT_LEAST_ONE, "patience": cli.NON_NEGATIVE, "seed": cli.NON_NEGATIVE,
    "val_fraction": (lambda v: 0 < v < 1, "> 0 and < 1"), "test_fraction": FRACTION,
    "devices": cli.AT_LEAST_ONE, "num_nodes": cli.AT_LEAST_ONE, "threads": cli.AT_LEAST_ONE,
}
"""The numeric TrainConfig fields' ranges: checked for API users and, by the option's name, on the command line."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved as config.json so a run can be repeated or resumed."""

    model: str = "lstm"                 # a name in signrec.models.MODELS
    hparams: dict[str, Any] = field(default_factory=dict)    # overrides of models.default_hparams(model)
    features: dict[str, Any] = field(default_factory=dict)   # overrides of FeatureSpec fields
    augment: bool = True                # fresh augmentation of training landmarks every epoch
    optimizer: str = "sgd"              # "sgd" (momentum + Nesterov) or "adamw"
    lr: float = 0.02                    # peak learning rate
    momentum: float = 0.9               # SGD only
    weight_decay: float = 1e-4
    schedule: str = "warmup-cosine"     # one of SCHEDULES; cosine spans max_epochs
    warmup_epochs: int = 3              # linear warm-up for warmup-cosine
    label_smoothing: float = 0.1
    mixup: float = 0.0                  # Beta(a, a) mixup of training batches (features and targets); 0 = off.
                                        # Off by default: within seed noise on unseen signers (BENCHMARKS.md)
    batch_size: int = 32
    max_epochs: int = 40                # the cosine schedule spans these; early stopping usually ends sooner
    patience: int = 10                  # epochs without a lower val_loss before early stopping
    seed: int = 0
    test_signers: tuple[str, ...] = ()  # hold these signers out for testing
    val_signers: tuple[str, ...] = ()   # early-stop on these signers (default: random 15 % of train signers)
    val_fraction: float = 0.15          # stratified random split, used when the data has no signers
    test_fraction: float = 0.15
    accelerator: str = "cpu"            # Lightning accelerator: "cpu", "gpu", "auto"
    devices: int = 1                    # processes (DDP when > 1) per node
    num_nodes: int = 1
    threads: int = 1                    # torch threads per process: these small sequential models gain little
                                        # from more, and lose 10x or more when cores are shared (DDP, other jobs)
    tensorboard: bool = False           # also log for TensorBoard (needs the tensorboard package)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise SignrecError(f"unknown optimizer {self.optimizer!r}; choose from {list(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise SignrecError(f"unknown schedule {self.schedule!r}; choose from {list(SCHEDULES)}")
        from signrec.models import MODELS, default_hparams

        if self.model not in MODELS:
            raise SignrecError(f"unknown model {self.model!r}; choose from {sorted(MODELS)}")
        unknown = sorted(set(self.hparams) - set(default_hparams(self.model)))
        if unknown:
            raise SignrecError(f"model {self.model!r} has no hyperparameter(s) {unknown}; "
                               f"known: {sorted(default_hparams(self.model))}")
        for name, (allowed, text) in RANGES.items():
            if not allowed(getattr(self, name)):
                raise SignrecError(f"{name} must be {text}, got {getattr(self, name)}")
        self.feature_spec()  # unknown or mistyped feature settings are refused now, not after loading the data
        object.__setattr__(self, "test_signers", tuple(self.test_signers))
        object.__setattr__(self, "val_signers", tuple(self.val_signers))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def feature_spec(self):
        from signrec.features import FeatureSpec

        return FeatureSpec.from_dict({**FeatureSpec().to_dict(), **self.features})


# ---- data ----------------------------------------------------------------------------------------
def load_dataset(data: str | os.PathLike) -> tuple[list[Sample], dict[str, Any]]:
    """Samples of a landmark dataset and the landmark models it was made with (extract.landmark_models);
    a video dataset (labels.csv or folder) is extracted first, cached."""
    from signrec.extract import ensure_landmarks, landmark_models

    csv_path = ensure_landmarks(data)
    return dataset.read_labels(csv_path), landmark_models(csv_path)


def load_arrays(samples: Sequence[Sample]) -> tuple[list[Sample], list[np.ndarray], list[str]]:
    """Load every sample; bad files are left out and described, so one broken file does not stop a run."""
    kept, arrays, bad = [], [], []
    for s in samples:
        try:
            arrays.append(landmarks.load(s.path))
            kept.append(s)
        except landmarks.LandmarkError as exc:
            bad.append(str(exc))
    return kept, arrays, bad


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
        from signrec.features import FeatureExtractor

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


# ---- Lightning pieces ----------------------------------------------------------------------------
def _lightning():
    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*directory .* exists and is not empty.*")  # --resume
    return L


def build_lightning_classes():
    """The LightningModule, DataModule and progress bar; built lazily so `signrec --help` does not import Lightning."""
    L = _lightning()
    from lightning.pytorch.callbacks import TQDMProgressBar

    # SignModule._step logs training metrics without sync_dist on purpose: each process's own mean is enough for
    # a progress display, and syncing them would cost a collective per epoch. Lightning warns of exactly that.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('train_")

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

    return L, SignModule, FeatureData, StderrProgressBar


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


@dataclass
class FitResult:
    model: nn.Module            # with the best (lowest val_loss) weights; only on global rank 0
    is_rank_zero: bool
    epochs: int                 # epochs run
    best_epoch: int
    stopped_early: bool
    seconds: float              # wall time of trainer.fit


def fit(model: nn.Module, train: tuple[list[np.ndarray], list[int]], val: tuple[list[np.ndarray], list[int]],
        featurize: Featurize, config: TrainConfig, run: Path, augmentation: Callable | None = None,
        resume: bool = False, progress: bool = True) -> FitResult:
    """Train `model` (x, mask) -> logits with Lightning; checkpoints and logs go to `run`.

    Lightning's progress bars show with `progress` when stderr is a terminal (in a log they are escape codes).
    Ctrl+C raises KeyboardInterrupt (Lightning itself would exit(1)); checkpoints/last.ckpt then holds the last
    finished epoch, from which `resume` continues.
    """
    if not val[0]:
        raise SignrecError("the validation set is empty; name --val-signers or use more data")
    L, SignModule, FeatureData, ProgressBar = build_lightning_classes()
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(config.seed, workers=True, verbose=False)
    # A resumed fit logs beside the earlier log (CSVLogger empties its folder) and is merged into it at the end.
    loggers: list[Any] = [CSVLogger(run, name="", version=RESUMED_LOG if resume else "logs")]
    if config.tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
            raise SignrecError("--tensorboard needs the tensorboard package: pip install tensorboard")
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run, name="", version="tensorboard"))
    checkpoint = ModelCheckpoint(dirpath=run / "checkpoints", filename="best", monitor="val_loss", mode="min",
                                 save_top_k=1, enable_version_counter=False)
    # Not save_last=True: with a monitor, Lightning writes last.ckpt only in epochs that improve on the best.
    last_checkpoint = ModelCheckpoint(dirpath=run / "checkpoints", filename="last", enable_version_counter=False)
    stopper = EarlyStopping(monitor="val_loss", mode="min", patience=config.patience)
    processes = config.devices * config.num_nodes
    strategy: Any = "auto"
    if processes > 1:
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo" if config.accelerator == "cpu" else None)
    bars = progress and sys.stderr.isatty()
    trainer = L.Trainer(
        max_epochs=config.max_epochs, accelerator=config.accelerator, devices=config.devices,
        num_nodes=config.num_nodes, strategy=strategy, logger=loggers,
        callbacks=[checkpoint, last_checkpoint, stopper, LearningRateMonitor(logging_interval="epoch"),
                   *([ProgressBar()] if bars else [])],
        reload_dataloaders_every_n_epochs=1 if augmentation is not None else 0,
        num_sanity_val_steps=0, log_every_n_steps=1, enable_progress_bar=bars, enable_model_summary=False,
    )
    data = FeatureData(train, val, featurize, augmentation, config.batch_size, config.seed)
    module = SignModule(model, config)
    last = run / "checkpoints" / "last.ckpt"
    sigint = signal.getsignal(signal.SIGINT)
    start = time.perf_counter()
    try:
        with torch_threads(config.threads):
            trainer.fit(module, datamodule=data, ckpt_path=last if resume and last.is_file() else None)
    except SystemExit:
        if not trainer.interrupted:
            raise
        raise KeyboardInterrupt from None  # Lightning's answer to Ctrl+C, after it saved what it could
    finally:
        if signal.getsignal(signal.SIGINT) is not sigint:  # Lightning ignores Ctrl+C once interrupted
            signal.signal(signal.SIGINT, sigint)
        if resume and trainer.global_rank == 0:
            _merge_log(run / "logs", run / RESUMED_LOG)
    seconds = time.perf_counter() - start
    zero = trainer.global_rank == 0
    best_epoch = -1
    if zero and checkpoint.best_model_path:
        ckpt = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(ckpt["state_dict"])
        best_epoch = int(ckpt["epoch"])
    return FitResult(module.model, zero, trainer.current_epoch, best_epoch, bool(stopper.stopped_epoch),
                     seconds)


RESUMED_LOG = "logs-resumed"
"""The CSV log folder of a resumed fit, until it is merged into logs/."""


def _merge_log(log_dir: Path, resumed_dir: Path) -> None:
    """Put the rows a resumed fit logged in place of the earlier log's rows from that step on, atomically: the
    earlier log stays whole until the merged one replaces it, whether the fit finished, failed or was interrupted."""
    import csv
    import io
    import shutil

    def rows(path: Path) -> list[dict[str, str]]:
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    new_rows = rows(resumed_dir / "metrics.csv")
    if new_rows:
        resumed_at = min(int(r["step"]) for r in new_rows)
        old_rows = [r for r in rows(log_dir / "metrics.csv") if int(r["step"]) < resumed_at]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(dict.fromkeys(k for r in old_rows + new_rows for k in r)))
        writer.writeheader()
        writer.writerows(old_rows + new_rows)
        write_text(log_dir / "metrics.csv", text.getvalue())
    shutil.rmtree(resumed_dir, ignore_errors=True)


# ---- one run -------------------------------------------------------------------------------------
def train(data: str | os.PathLike, out: str | os.PathLike, config: TrainConfig = TrainConfig(),
          resume: bool = False, progress: bool = True) -> dict[str, Any] | None:
    """Train on DATA into the run folder `out`; returns metrics with the split and the model folder (None on DDP
    ranks other than 0). With `progress`, the split and Lightning's progress bars are shown on stderr."""
    out = Path(out)
    check_run_folder(out, config, resume)
    samples, made = load_dataset(data)
    samples, arrays, bad = load_arrays(samples)
    split = restore_split(out, samples) if resume else make_split(samples, config)
    if progress and _is_global_zero():
        print(f"split: {split.describe()}", file=sys.stderr, flush=True)
    metrics = train_split(split, dict(zip((s.key for s in samples), arrays, strict=True)), out, config,
                          labels=dataset.labels_of(samples), skipped=bad, data=str(data), landmark_models=made,
                          resume=resume, progress=progress)
    return None if metrics is None else {**metrics, "split": split.summary(), "model": str(out / "model")}


def train_split(split: Split, arrays: dict[str, np.ndarray], out: Path, config: TrainConfig,
                labels: list[str], skipped: Sequence[str] = (), data: str = "",
                landmark_models: dict[str, Any] | None = None, resume: bool = False,
                progress: bool = True) -> dict[str, Any] | None:
    """Train, evaluate and save the artifact for one split; `arrays` maps sample key -> landmarks, made with
    `landmark_models` (extract.landmark_models; None: MediaPipe Holistic as shipped)."""
    from signrec import models
    from signrec.augment import default_augmentation
    from signrec.evaluate import plot_learning_curves, score

    if not split.train:
        raise SignrecError("the training set is empty")
    spec = config.feature_spec()
    hparams = {**models.default_hparams(config.model), **config.hparams}
    index = {label: i for i, label in enumerate(labels)}

    def part(samples: list[Sample]) -> tuple[list[np.ndarray], list[int]]:
        return [arrays[s.key] for s in samples], [index[s.label] for s in samples]

    torch.manual_seed(config.seed)
    model = models.build_model(config.model, spec.n_features, len(labels), **hparams)
    check_run_folder(out, config, resume)
    if _is_global_zero():
        out.mkdir(parents=True, exist_ok=True)
        if resume:  # the overrides (RESUME_OVERRIDES) hold for the rest of the run, and a later resume
            saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
            write_json(out / "config.json", {**saved, "config": config.to_dict()})
        else:
            write_json(out / "config.json", {"config": config.to_dict(), "data": data, "labels": labels,
                                             "feature_spec": spec.to_dict(), "hparams": hparams,
                                             "versions": package_versions()})
            write_json(out / "split.json", {**split.summary(), "skipped_files": list(skipped),
                                            **{name: [s.key for s in getattr(split, name)]
                                               for name in ("train", "val", "test")}})
    result = fit(model, part(split.train), part(split.val), SpecFeaturizer(spec), config, out,
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
            seqs, y = part(samples)
            with torch_threads(config.threads):
                proba = classifier.predict_proba(seqs)
            metrics[name] = score(np.array(y), proba, labels, per_class=False)
            if name == "val":
                where = f"signers {', '.join(dataset.signers_of(samples))}" if dataset.signers_of(samples) else "random"
                classifier.meta["unknown"] = unknown.calibrate(proba, where)
    classifier.meta["metrics"] = metrics
    classifier.save(out / "model")
    write_json(out / "metrics.json", metrics)
    plot_learning_curves(out / "logs" / "metrics.csv", out / "learning_curves.png")
    return metrics


def check_run_folder(out: Path, config: TrainConfig, resume: bool) -> None:
    """Before any work: a new run must not overwrite an earlier one, and a resumed run must have epochs left.

    A run is complete once it wrote metrics.json: then early stopping ended it, or it ran its max_epochs, which
    `--resume --max-epochs` with more epochs extends. Without metrics.json it was interrupted and continues.
    """
    if not _is_global_zero():  # DDP ranks > 0 start once rank 0 has begun to write the folder
        return
    if not resume:
        if (out / "config.json").is_file() or any(out.glob("fold-*/config.json")):
            raise SignrecError(f"{out} already holds a training run; continue it with --resume or choose another "
                               "--out")
        return
    if not (out / "metrics.json").is_file():
        last = out / "checkpoints" / "last.ckpt"
        done = torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1 if last.is_file() else 0
        if done > config.max_epochs:
            raise SignrecError(f"{out} has trained {done} epochs already; resume with --max-epochs {done} or more")
        return
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    epochs = metrics["epochs"]
    if metrics["stopped_early"]:
        raise SignrecError(f"{out} is complete: early stopping ended it after {epochs} epochs (best epoch "
                           f"{metrics['best_epoch']}); to train again, choose another --out")
    if epochs >= config.max_epochs:
        longer = ("a one-cycle schedule can not be extended" if config.schedule == "onecycle"
                  else f"--resume --max-epochs N with N > {epochs} trains it longer")
        raise SignrecError(f"{out} is complete: it ran all its {epochs} epochs; {longer}, or choose another --out")


def saved_config(out: str | os.PathLike, loso: bool = False) -> TrainConfig:
    """The config of an existing run folder (what --resume continues with); `loso`: of a leave-one-signer-out run,
    from a fold's config when the run's own is missing (made before LOSO runs saved one)."""
    out = Path(out)
    path = out / "config.json"
    if loso and not path.is_file():
        path = next(iter(sorted(out.glob("fold-*/config.json"))), path)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        config = TrainConfig.from_dict(saved["config"])
    except (OSError, ValueError, KeyError) as exc:
        raise SignrecError(f"{out}: can not resume, config.json missing or unreadable ({exc})") from None
    if path.parent != out:
        return dataclasses.replace(config, test_signers=(), val_signers=())
    if bool(saved.get("loso")) != loso:
        raise SignrecError(f"{out} holds a {'single' if loso else 'leave-one-signer-out'} run; resume it "
                           f"{'without' if loso else 'with'} --loso")
    return config


def restore_split(out: Path, samples: list[Sample]) -> Split:
    try:
        saved = json.loads((out / "split.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignrecError(f"{out}: can not resume, split.json missing or unreadable ({exc})") from None
    by_key = {s.key: s for s in samples}
    missing = [k for name in ("train", "val", "test") for k in saved[name] if k not in by_key]
    if missing:
        raise SignrecError(f"{out}: can not resume, {len(missing)} file(s) of the saved split are gone, "
                           f"e.g. {missing[0]}")
    return Split(*([by_key[k] for k in saved[name]] for name in ("train", "val", "test")), how=saved["how"])


def _is_global_zero() -> bool:
    """True in the process that writes files (before the Trainer exists, from the launcher's environment)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


# ---- leave one signer out ------------------------------------------------------------------------
def train_loso(data: str | os.PathLike, out: str | os.PathLike, config: TrainConfig = TrainConfig(),
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
    out = Path(out)
    check_run_folder(out, config, resume)
    samples, made = load_dataset(data)
    folds = [signer for signer, _split in dataset.loso_folds(samples)]
    results: dict[str, dict[str, Any] | None] = {}
    for signer in folds:
        done = out / f"fold-{signer}" / "metrics.json"
        if resume and done.is_file():
            results[signer] = json.loads(done.read_text(encoding="utf-8"))
    todo = [signer for signer in folds if signer not in results]
    if resume and not todo:
        raise SignrecError(f"{out} is complete: all {len(folds)} folds are trained; to train again, choose another "
                           "--out")
    if _is_global_zero():
        write_json(out / "config.json", {"config": config.to_dict(), "data": str(data), "loso": True})

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
                                 initargs=(samples, made, str(data))) as pool:
            # A fold is handed out only when a worker is free: on Ctrl+C (which reaches the workers too, and stops
            # their folds at a checkpoint) no queued fold starts afterwards, so the run ends at once.
            waiting = iter(todo)
            running = {pool.submit(_fold_worker, s, out, config, resume): s for s in itertools.islice(waiting, workers)}
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    report(running.pop(future), future.result())
                    if (signer := next(waiting, None)) is not None:
                        running[pool.submit(_fold_worker, signer, out, config, resume)] = signer
    elif todo:
        _fold_worker_init(samples, made, str(data))
        try:
            for signer in todo:
                report(signer, _fold_worker(signer, out, config, resume, progress))
        finally:
            _FOLD_DATA.clear()
    if not _is_global_zero():
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
    summary = {"folds": rows, "mean": mean, "config": config.to_dict(), "data": str(data)}
    write_json(out / "loso.json", summary)
    write_text(out / "loso.md", loso_table(summary) + "\n")
    return summary


_FOLD_DATA: dict[str, Any] = {}
"""The dataset of a LOSO run, loaded once per process (the parent, or each --jobs worker)."""


def _fold_worker_init(samples: list[Sample], made: dict[str, Any], data: str) -> None:
    kept, arrays, bad = load_arrays(samples)
    _FOLD_DATA.update(samples=kept, arrays=dict(zip((s.key for s in kept), arrays, strict=True)), bad=bad,
                      labels=dataset.labels_of(kept), made=made, data=data)


def _fold_worker(signer: str, out: Path, config: TrainConfig, resume: bool,
                 progress: bool = False) -> dict[str, Any] | None:
    """Train and test the fold that holds `signer` out (its metrics; None on DDP ranks other than 0); with
    `resume`, a fold that was begun continues (from its last checkpoint, if an epoch finished)."""
    d = _FOLD_DATA
    split = dict(dataset.loso_folds(d["samples"]))[signer]
    fold_dir = out / f"fold-{signer}"
    fold_config = dataclasses.replace(config, test_signers=(signer,), val_signers=tuple(dataset.signers_of(split.val)))
    return train_split(split, d["arrays"], fold_dir, fold_config, d["labels"], skipped=d["bad"], data=d["data"],
                       landmark_models=d["made"], resume=resume and (fold_dir / "config.json").is_file(),
                       progress=progress)


def duration(seconds: float) -> str:
    """A wall time as a person reads it: tenths of a second when short, minutes when long."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def loso_table(summary: dict[str, Any]) -> str:
    lines = ["| test signer | clips | top-1 | top-5 | macro-F1 | epochs | fit s |", "|---|---|---|---|---|---|---|"]
    for r in summary["folds"]:
        lines.append(f"| {r['signer']} | {r['n']} | {r['top1']:.1%} | {r['top5']:.1%} | {r['macro_f1']:.3f} "
                     f"| {r['epochs']} | {r['fit_seconds']:.1f} |")
    m = summary["mean"]
    lines.append(f"| **mean** | | **{m['top1']:.1%}** | {m['top5']:.1%} | {m['macro_f1']:.3f} | {m['epochs']:.0f} "
                 f"| {m['fit_seconds']:.1f} |")
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------------------------
def _key_values(items: Sequence[str] | None, option: str) -> dict[str, Any]:
    result = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SignrecError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def _signers(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("data", help="labels.csv (or its folder) of landmark .npy files or of videos")
    parser.add_argument("--out", required=True, type=Path, help="run folder to create (or resume)")
    from signrec.models import MODELS

    parser.add_argument("--model", choices=sorted(MODELS), help=f"network [{d.model}]")
    parser.add_argument("--hparam", action="append", metavar="KEY=VALUE", help="model hyperparameter override")
    parser.add_argument("--feature", action="append", metavar="KEY=VALUE", help="feature spec override")
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                        help="train on the landmarks as recorded")
    parser.add_argument("--optimizer", choices=OPTIMIZERS,
                        help=f"sgd (momentum, Nesterov) or adamw [{d.optimizer}]")
    parser.add_argument("--lr", type=cli.number(float, RANGES["lr"]), help=f"peak learning rate [{d.lr}]")
    parser.add_argument("--weight-decay", type=cli.number(float, RANGES["weight_decay"]),
                        help=f"weight decay [{d.weight_decay}]")
    parser.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule [{d.schedule}]")
    parser.add_argument("--label-smoothing", type=cli.number(float, RANGES["label_smoothing"]),
                        help=f"label smoothing of the cross-entropy [{d.label_smoothing}]")
    parser.add_argument("--mixup", type=cli.number(float, RANGES["mixup"]),
                        help=f"Beta(a, a) mixup of training batches, 0 = off [{d.mixup}]")
    parser.add_argument("--batch-size", type=cli.number(int, RANGES["batch_size"]),
                        help=f"sequences per batch [{d.batch_size}]")
    parser.add_argument("--max-epochs", type=cli.number(int, RANGES["max_epochs"]),
                        help=f"epochs at most (the cosine schedule spans them) [{d.max_epochs}]")
    parser.add_argument("--patience", type=cli.number(int, RANGES["patience"]),
                        help=f"early-stopping patience in epochs [{d.patience}]")
    parser.add_argument("--seed", type=cli.number(int, RANGES["seed"]),
                        help=f"seeds the split, the weights and the augmentation [{d.seed}]")
    parser.add_argument("--test-signers", type=_signers, metavar="A,B", help="signers held out for testing")
    parser.add_argument("--val-signers", type=_signers, metavar="A,B", help="signers used for early stopping")
    parser.add_argument("--loso", action="store_true", help="leave-one-signer-out: one run per signer + summary")
    parser.add_argument("--jobs", type=cli.number(int, cli.AT_LEAST_ONE), default=1,
                        help="with --loso: folds trained at once, one process each (default 1; e.g. the number of "
                             "cores divided by --threads)")
    parser.add_argument("--devices", type=cli.number(int, RANGES["devices"]),
                        help="processes per node; > 1 trains with DDP")
    parser.add_argument("--num-nodes", type=cli.number(int, RANGES["num_nodes"]),
                        help="machines (launch with torchrun or srun: see the docstring at the top of signrec/train.py)")
    parser.add_argument("--accelerator", help=f"Lightning accelerator [{d.accelerator}]")
    parser.add_argument("--threads", type=cli.number(int, RANGES["threads"]),
                        help=f"torch threads per process [{d.threads}]")
    parser.add_argument("--tensorboard", action="store_true", default=None, help="also write TensorBoard logs")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint, with its saved config and split "
                             f"(only {', '.join(_option(k) for k in RESUME_OVERRIDES)} may change)")
    cli.add_json_flag(parser)


_ARGUMENT = {"hparams": "hparam", "features": "feature"}
"""TrainConfig fields whose command-line argument has another name."""


def _option(name: str) -> str:
    """The command-line option that sets the TrainConfig field `name`."""
    return "--no-augment" if name == "augment" else "--" + _ARGUMENT.get(name, name).replace("_", "-")


def _given(args: argparse.Namespace) -> list[str]:
    """The TrainConfig fields set on the command line."""
    return [f.name for f in dataclasses.fields(TrainConfig)
            if getattr(args, _ARGUMENT.get(f.name, f.name), None) is not None]


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {name: getattr(args, name) for name in _given(args) if name not in _ARGUMENT}
    values["hparams"] = _key_values(args.hparam, "--hparam")
    values["features"] = _key_values(args.feature, "--feature")
    return TrainConfig(**values)


RESUME_OVERRIDES = ("max_epochs", "patience", "devices", "num_nodes", "accelerator", "threads")
"""What --resume may change: how long and where to train, not what is learned."""


def run(args: argparse.Namespace) -> int:
    if args.resume:
        fixed = [_option(name) for name in _given(args) if name not in RESUME_OVERRIDES]
        if fixed:
            raise SignrecError(f"--resume continues with the run's saved settings; {', '.join(fixed)} can not "
                               f"change (only {', '.join(_option(k) for k in RESUME_OVERRIDES)} may)")
        saved = saved_config(args.out, loso=args.loso)
        config = dataclasses.replace(saved, **{k: getattr(args, k) for k in _given(args)})
        if saved.schedule == "onecycle" and config.max_epochs != saved.max_epochs:
            raise SignrecError("a one-cycle schedule is fixed to its max_epochs; resume without --max-epochs")
    else:
        config = config_from_args(args)
    if args.jobs != 1 and not args.loso:
        raise SignrecError("--jobs trains leave-one-signer-out folds side by side; use it with --loso")
    if args.loso and (config.test_signers or config.val_signers):
        raise SignrecError("--loso chooses the test and validation signers itself; drop --test/--val-signers")
    try:
        if args.loso:
            summary = train_loso(args.data, args.out, config, resume=args.resume, jobs=args.jobs)
            if summary is not None:
                cli.emit(args, summary, loso_table(summary) + f"\n\nfolds and models in {args.out}")
            return 0
        metrics = train(args.data, args.out, config, resume=args.resume, progress=not args.json)
    except KeyboardInterrupt:
        if not (args.out / "config.json").is_file():  # stopped before the run began: nothing to resume
            raise
        again = shlex.join(["signrec", "train", str(args.data), "--out", str(args.out),
                            *(["--loso"] if args.loso else []), "--resume"])
        print(f"{args.prog}: interrupted; `{again}` continues it from the last checkpoint", file=sys.stderr)
        return 130
    if metrics is None:
        return 0
    lines = [f"trained {config.model} for {metrics['epochs']} epochs in {duration(metrics['fit_seconds'])} "
             f"(best epoch {metrics['best_epoch']})"]
    for name in ("val", "test"):
        if name in metrics:
            m = metrics[name]
            lines.append(f"{name}: top-1 {m['top1']:.1%}  top-5 {m['top5']:.1%}  macro-F1 {m['macro_f1']:.3f}"
                         f"  ({m['n']} clip{'' if m['n'] == 1 else 's'})")
    lines.append(f"model: {metrics['model']}   curves: {args.out / 'learning_curves.png'}")
    cli.emit(args, metrics, "\n".join(lines))
    return 0
