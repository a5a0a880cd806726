"""One Lightning fit: SGD with momentum (or AdamW), a learning-rate schedule, early stopping on the validation
loss, checkpoints every epoch, a CSV log, and Ctrl+C that leaves a run `--resume` can continue."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from signrec import SignrecError
from signrec.files import write_text
from signrec.train.config import TrainConfig
from signrec.train.data import Featurize
from signrec.train.run_folder import RunFolder


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)




@dataclass
class FitResult:
    model: nn.Module            # with the best (lowest val_loss) weights; only on global rank 0
    is_rank_zero: bool
    epochs: int                 # epochs run
    best_epoch: int
    stopped_early: bool
    seconds: float              # wall time of trainer.fit


def fit(model: nn.Module, train: tuple[list[np.ndarray], list[int]], val: tuple[list[np.ndarray], list[int]],
        featurize: Featurize, config: TrainConfig, run: RunFolder, augmentation: Callable | None = None,
        resume: bool = False, progress: bool = True) -> FitResult:
    """Train `model` (x, mask) -> logits with Lightning; checkpoints and logs go to `run`.

    Lightning's progress bars show with `progress` when stderr is a terminal (in a log they are escape codes).
    Ctrl+C raises KeyboardInterrupt (Lightning itself would exit(1)); checkpoints/last.ckpt then holds the last
    finished epoch, from which `resume` continues.
    """
    if not val[0]:
        raise SignrecError("the validation set is empty; name --val-signers or use more data")
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from signrec.train.lightning import FeatureData, SignModule, StderrProgressBar, quiet

    quiet()

    L.seed_everything(config.seed, workers=True, verbose=False)
    # A resumed fit logs beside the earlier log (CSVLogger empties its folder) and is merged into it at the end.
    loggers: list[Any] = [CSVLogger(run.path, name="", version=(run.resumed_logs if resume else run.logs).name)]
    if config.tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None and importlib.util.find_spec("tensorboardX") is None:
            raise SignrecError("--tensorboard needs the tensorboard package: pip install tensorboard")
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run.path, name="", version="tensorboard"))
    checkpoint = ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor="val_loss", mode="min",
                                 save_top_k=1, enable_version_counter=False)
    # Not save_last=True: with a monitor, Lightning writes last.ckpt only in epochs that improve on the best.
    last_checkpoint = ModelCheckpoint(dirpath=run.checkpoints, filename="last", enable_version_counter=False)
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
                   *([StderrProgressBar()] if bars else [])],
        reload_dataloaders_every_n_epochs=1 if augmentation is not None else 0,
        num_sanity_val_steps=0, log_every_n_steps=1, enable_progress_bar=bars, enable_model_summary=False,
    )
    data = FeatureData(train, val, featurize, augmentation, config.batch_size, config.seed)
    module = SignModule(model, config)
    last = run.last_checkpoint
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
            _merge_log(run.logs, run.resumed_logs)
    seconds = time.perf_counter() - start
    zero = trainer.global_rank == 0
    best_epoch = -1
    if zero and checkpoint.best_model_path:
        ckpt = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(ckpt["state_dict"])
        best_epoch = int(ckpt["epoch"])
    return FitResult(module.model, zero, trainer.current_epoch, best_epoch, bool(stopper.stopped_epoch),
                     seconds)


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
