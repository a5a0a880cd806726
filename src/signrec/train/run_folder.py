"""Where a training run keeps its files: every path of a run folder is named here and nowhere else.

    config.json  split.json  metrics.json  logs/metrics.csv  learning_curves.png  checkpoints/{best,last}.ckpt
    model/       (the model folder, `signrec.model.artifact`)
    evaluation/  (what `signrec evaluate` writes by default)
    fold-<signer>/  loso.json  loso.md   (a leave-one-signer-out run: one run folder per fold)
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signrec import SignrecError
from signrec.landmarks.dataset import Sample, Split
from signrec.train.config import TrainConfig


def is_global_zero() -> bool:
    """True in the process that writes files (before the Trainer exists, from the launcher's environment)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    config = property(lambda self: self.path / "config.json")
    split = property(lambda self: self.path / "split.json")
    metrics = property(lambda self: self.path / "metrics.json")
    logs = property(lambda self: self.path / "logs")
    log_csv = property(lambda self: self.path / "logs" / "metrics.csv")
    resumed_logs = property(lambda self: self.path / "logs-resumed")
    """A resumed fit's CSV log, until it is merged into logs/."""
    checkpoints = property(lambda self: self.path / "checkpoints")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.ckpt")
    curves = property(lambda self: self.path / "learning_curves.png")
    model = property(lambda self: self.path / "model")
    evaluation = property(lambda self: self.path / "evaluation")
    loso_json = property(lambda self: self.path / "loso.json")
    loso_md = property(lambda self: self.path / "loso.md")

    def fold(self, signer: str) -> RunFolder:
        return RunFolder(self.path / f"fold-{signer}")

    @classmethod
    def of_model(cls, model_dir: str | os.PathLike) -> RunFolder | None:
        """The run folder a model folder was trained in, if it is still beside it (it has the training log)."""
        run = cls(Path(model_dir).resolve().parent)
        return run if run.log_csv.is_file() else None

    def read_json(self, path: Path, what: str) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SignrecError(f"{self.path}: {what}, {path.name} missing or unreadable ({exc})") from None

    def check(self, config: TrainConfig, resume: bool) -> None:
        """Before any work: a new run must not overwrite an earlier one, and a resumed run must have epochs left.

        A run is complete once it wrote metrics.json: then early stopping ended it, or it ran its max_epochs, which
        `--resume --max-epochs` with more epochs extends. Without metrics.json it was interrupted and continues.
        """
        if not is_global_zero():  # DDP ranks > 0 start once rank 0 has begun to write the folder
            return
        out = self.path
        if not resume:
            if self.config.is_file() or any(out.glob("fold-*/config.json")):
                raise SignrecError(f"{out} already holds a training run; continue it with --resume or choose "
                                   "another --out")
            return
        if not self.metrics.is_file():
            import torch

            last = self.last_checkpoint
            done = torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1 if last.is_file() else 0
            if done > config.max_epochs:
                raise SignrecError(f"{out} has trained {done} epochs already; resume with --max-epochs {done} or "
                                   "more")
            return
        metrics = self.read_json(self.metrics, "can not resume")
        epochs = metrics["epochs"]
        if metrics["stopped_early"]:
            raise SignrecError(f"{out} is complete: early stopping ended it after {epochs} epochs (best epoch "
                               f"{metrics['best_epoch']}); to train again, choose another --out")
        if epochs >= config.max_epochs:
            longer = ("a one-cycle schedule can not be extended" if config.schedule == "onecycle"
                      else f"--resume --max-epochs N with N > {epochs} trains it longer")
            raise SignrecError(f"{out} is complete: it ran all its {epochs} epochs; {longer}, or choose another "
                               "--out")

    def saved_config(self, loso: bool = False) -> TrainConfig:
        """The config of this run (what --resume continues with); `loso`: of a leave-one-signer-out run, from a
        fold's config when the run's own is missing (made before LOSO runs saved one)."""
        path = self.config
        if loso and not path.is_file():
            path = next(iter(sorted(self.path.glob("fold-*/config.json"))), path)
        saved = self.read_json(path, "can not resume")
        try:
            config = TrainConfig.from_dict(saved["config"])
        except (KeyError, TypeError) as exc:
            raise SignrecError(f"{self.path}: can not resume, config.json has no valid config ({exc})") from None
        if path.parent != self.path:
            return dataclasses.replace(config, test_signers=(), val_signers=())
        if bool(saved.get("loso")) != loso:
            raise SignrecError(f"{self.path} holds a {'single' if loso else 'leave-one-signer-out'} run; resume it "
                               f"{'without' if loso else 'with'} --loso")
        return config

    def saved_split(self, samples: list[Sample]) -> Split:
        """The split this run was trained on, of `samples` (the dataset opened again)."""
        saved = self.read_json(self.split, "can not resume")
        by_key = {s.key: s for s in samples}
        missing = [k for name in ("train", "val", "test") for k in saved[name] if k not in by_key]
        if missing:
            raise SignrecError(f"{self.path}: can not resume, {len(missing)} file(s) of the saved split are gone, "
                               f"e.g. {missing[0]}")
        return Split(*([by_key[k] for k in saved[name]] for name in ("train", "val", "test")), how=saved["how"])
