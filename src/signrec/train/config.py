"""Everything that decides a training run, in one frozen, validated dataclass: saved as config.json so that a
run can be repeated or resumed; its numeric ranges are checked here for API users and by option name on the
command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from signrec import SignrecError, ranges

OPTIMIZERS = ("sgd", "adamw")


SCHEDULES = ("warmup-cosine", "cosine", "onecycle", "plateau", "constant")


FRACTION: ranges.Range = (lambda v: 0 <= v < 1, ">= 0 and < 1")


RANGES: dict[str, ranges.Range] = {
    "lr": ranges.POSITIVE, "weight_decay": ranges.NON_NEGATIVE, "warmup_epochs": ranges.NON_NEGATIVE,
    "label_smoothing": FRACTION, "mixup": ranges.NON_NEGATIVE, "batch_size": ranges.AT_LEAST_ONE,
    "max_epochs": ranges.AT_LEAST_ONE, "patience": ranges.NON_NEGATIVE, "seed": ranges.NON_NEGATIVE,
    "val_fraction": (lambda v: 0 < v < 1, "> 0 and < 1"), "test_fraction": FRACTION,
    "devices": ranges.AT_LEAST_ONE, "num_nodes": ranges.AT_LEAST_ONE, "threads": ranges.AT_LEAST_ONE,
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
        from signrec.model.networks import MODELS, default_hparams

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
        from signrec.model.features import FeatureSpec

        return FeatureSpec.from_dict({**FeatureSpec().to_dict(), **self.features})
