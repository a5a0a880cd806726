"""`signrec card`: what a new user can expect of a model: accuracy on a new person (a leave-one-signer-out mean
and spread when a --loso run is given), after enrollment, and the "not a sign" operating point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from signrec import SignrecError
from signrec.commands import options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder (e.g. RUN/model)")
    parser.add_argument("--loso", type=Path, metavar="RUN",
                        help="a `signrec train --loso` run of the same recipe: its mean and spread over signers")
    parser.add_argument("--enrollment", type=Path, metavar="JSON",
                        help='accuracy after enrollment, {"k": {"mean": .., "min": .., "max": ..}} '
                             "(as benchmarks/enroll.py measures it)")
    parser.add_argument("--write", action="store_true", help="store the card in the model's model.json")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from signrec.evaluate.card import card_text, model_card
    from signrec.model.artifact import Classifier
    from signrec.train.run_folder import RunFolder

    classifier = Classifier.load(args.model)
    loso = None
    if args.loso is not None:
        run = RunFolder(args.loso)
        if not run.loso_json.is_file():
            raise SignrecError(f"{args.loso}: no loso.json; is it a finished `signrec train --loso` run?")
        loso = run.read_json(run.loso_json, "leave-one-signer-out run")
    enrollment = None
    if args.enrollment is not None:
        try:
            enrollment = json.loads(args.enrollment.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SignrecError(f"{args.enrollment}: not a readable JSON file ({exc})") from None
    card = model_card(classifier.describe(), loso, enrollment)
    if args.write:
        classifier.meta["card"] = card
        classifier.save_meta(args.model)
    options.emit(args, card, card_text(card) + (f"\n(written to {args.model / 'model.json'})" if args.write else ""))
    return 0
