"""`signrec card`: what a user can expect of a model, gathered from its model.json and run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from signrec.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder (e.g. RUN/model)")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from signrec.evaluate.card import card, text
    from signrec.model.artifact import Classifier

    c = card(args.model, Classifier.load(args.model))
    options.emit(args, c, text(c))
    return 0
