"""`signrec train`: a model on a landmark or video dataset, a signer-independent split by default; --loso runs
leave-one-signer-out; --resume continues an interrupted run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signrec import SignrecError, ranges
from signrec.commands import options
from signrec.train.config import OPTIMIZERS, RANGES, SCHEDULES, TrainConfig
from signrec.train.loso import loso_table, train_loso
from signrec.train.run import duration, train
from signrec.train.run_folder import RunFolder


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
    parser.add_argument("data", help="labels.csv (or its folder) of landmark .npy files or of videos, or a shard "
                                     "store (`signrec pack`; a folder or fsspec URL), streamed")
    parser.add_argument("--out", required=True, type=Path, help="run folder to create (or resume)")
    from signrec.model.networks import MODELS

    parser.add_argument("--model", choices=sorted(MODELS), help=f"network [{d.model}]")
    parser.add_argument("--hparam", action="append", metavar="KEY=VALUE", help="model hyperparameter override")
    parser.add_argument("--feature", action="append", metavar="KEY=VALUE", help="feature spec override")
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=None,
                        help="train on the landmarks as recorded")
    parser.add_argument("--optimizer", choices=OPTIMIZERS,
                        help=f"sgd (momentum, Nesterov) or adamw [{d.optimizer}]")
    parser.add_argument("--lr", type=options.number(float, RANGES["lr"]), help=f"peak learning rate [{d.lr}]")
    parser.add_argument("--weight-decay", type=options.number(float, RANGES["weight_decay"]),
                        help=f"weight decay [{d.weight_decay}]")
    parser.add_argument("--schedule", choices=SCHEDULES, help=f"learning-rate schedule [{d.schedule}]")
    parser.add_argument("--label-smoothing", type=options.number(float, RANGES["label_smoothing"]),
                        help=f"label smoothing of the cross-entropy [{d.label_smoothing}]")
    parser.add_argument("--mixup", type=options.number(float, RANGES["mixup"]),
                        help=f"Beta(a, a) mixup of training batches, 0 = off [{d.mixup}]")
    parser.add_argument("--batch-size", type=options.number(int, RANGES["batch_size"]),
                        help=f"sequences per batch [{d.batch_size}]")
    parser.add_argument("--max-epochs", type=options.number(int, RANGES["max_epochs"]),
                        help=f"epochs at most (the cosine schedule spans them) [{d.max_epochs}]")
    parser.add_argument("--patience", type=options.number(int, RANGES["patience"]),
                        help=f"early-stopping patience in epochs [{d.patience}]")
    parser.add_argument("--seed", type=options.number(int, RANGES["seed"]),
                        help=f"seeds the split, the weights and the augmentation [{d.seed}]")
    parser.add_argument("--test-signers", type=_signers, metavar="A,B", help="signers held out for testing")
    parser.add_argument("--val-signers", type=_signers, metavar="A,B", help="signers used for early stopping")
    parser.add_argument("--loso", action="store_true", help="leave-one-signer-out: one run per signer + summary")
    parser.add_argument("--jobs", type=options.number(int, ranges.AT_LEAST_ONE), default=1,
                        help="with --loso: folds trained at once, one process each (default 1; e.g. the number of "
                             "cores divided by --threads)")
    parser.add_argument("--devices", type=options.number(int, RANGES["devices"]),
                        help="processes per node; > 1 trains with DDP")
    parser.add_argument("--num-nodes", type=options.number(int, RANGES["num_nodes"]),
                        help="machines (launch with torchrun or srun: docs/scale.md)")
    parser.add_argument("--accelerator", help=f"Lightning accelerator [{d.accelerator}]")
    parser.add_argument("--threads", type=options.number(int, RANGES["threads"]),
                        help=f"torch threads per process [{d.threads}]")
    parser.add_argument("--tensorboard", action="store_true", default=None, help="also write TensorBoard logs")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint, with its saved config and split "
                             f"(only {', '.join(_option(k) for k in RESUME_OVERRIDES)} may change)")
    options.add_json_flag(parser)


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
        saved = RunFolder(args.out).saved_config(loso=args.loso)
        asked = config_from_args(args)  # the same command plus --resume repeats the run's settings: those may stay
        fixed = [_option(name) for name in _given(args)
                 if name not in RESUME_OVERRIDES and getattr(asked, name) != getattr(saved, name)]
        if fixed:
            raise SignrecError(f"--resume continues with the run's saved settings; {', '.join(fixed)} can not "
                               f"change (only {', '.join(_option(k) for k in RESUME_OVERRIDES)} may)")
        config = dataclasses.replace(saved, **{k: getattr(args, k) for k in _given(args) if k in RESUME_OVERRIDES})
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
                options.emit(args, summary, loso_table(summary) + f"\n\nfolds and models in {args.out}")
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
    options.emit(args, metrics, "\n".join(lines))
    return 0
