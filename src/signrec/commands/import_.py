"""`signrec import`: MP_Data, Kaggle ISLR parquet or hands-only arrays -> a landmark dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from signrec import ranges
from signrec.commands import options
from signrec.landmarks.formats import IMPORTERS, import_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=sorted(IMPORTERS),
                        help="mpdata: MP_Data/<action>/<seq>/<frame>.npy; kaggle: train.csv + parquet; "
                             "hands: labels.csv of (T, 2, 21, 3) arrays")
    parser.add_argument("src", type=Path, help="the MP_Data folder, the Kaggle train.csv (or its folder), "
                                               "or the hands dataset's labels.csv (or its folder)")
    parser.add_argument("--out", required=True,
                        help="folder for labels.csv and the .npy files; with --shards, the shard store (a new folder "
                             "or fsspec URL)")
    parser.add_argument("--shards", nargs="?", const="float32", choices=("float32", "float16"), default=None,
                        help="write a shard store (`signrec pack`'s) instead, streaming; optionally its dtype "
                             "[float32]")
    parser.add_argument("--shard-mb", type=options.number(float, ranges.POSITIVE), default=256.0,
                        help="with --shards: uncompressed size of a shard, which bounds the memory used [%(default)s]")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    report = import_dataset(args.format, args.src, args.out, shards=args.shards, shard_mb=args.shard_mb)
    options.emit(args, report.to_dict(), report.text("imported"))
    return 1 if report.failed else 0
