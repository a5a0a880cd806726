"""`signrec enroll`: a base model adapted to one person from a few of their clips, new signs included."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from signrec import ranges
from signrec.commands import options
from signrec.train.enroll import EnrollSettings, enroll


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = EnrollSettings()
    parser.add_argument("model", type=Path, help="the base model folder (RUN/model); it is only read")
    parser.add_argument("data", type=Path, help="the person's clips: a labels.csv or <label>/<clip> folder of "
                                                "videos or landmark .npy files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the personal model")
    parser.add_argument("--signer", help="the person's name, recorded in model.json [the data's signer column]")
    parser.add_argument("--only-enrolled", action="store_true",
                        help="recognise only the enrolled signs [the base model's signs and the new ones]")
    parser.add_argument("--views", type=options.number(int, ranges.NON_NEGATIVE), default=d.views,
                        help=f"augmented copies of each clip [{d.views}]")
    parser.add_argument("--steps", type=options.number(int, ranges.NON_NEGATIVE), default=d.steps,
                        help=f"fine-tuning steps of the head, 0 = prototypes only [{d.steps}]")
    parser.add_argument("--seed", type=options.number(int, ranges.NON_NEGATIVE), default=d.seed,
                        help=f"seeds the augmentation and the fine-tuning [{d.seed}]")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    settings = replace(EnrollSettings(), views=args.views, steps=args.steps, seed=args.seed)
    record = enroll(args.model, args.data, args.out, args.signer, args.only_enrolled, settings)
    lines = [f"enrolled {record['signer'] or 'the person'}: {len(record['signs'])} signs, "
             f"{sum(record['signs'].values())} clips ({len(record['new_signs'])} new signs) in "
             f"{record['check']['seconds']:.1f} s; {record['check']['top1_on_enrollment_clips']:.0%} of the clips "
             "recognised", f"personal model: {args.out}"]
    lines += [f"skipped {path}: {why}" for path, why in record["skipped_files"].items()]
    options.emit(args, record, "\n".join(lines))
    return 0
