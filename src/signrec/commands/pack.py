"""`signrec pack`: a landmark dataset as Parquet shards, at a folder or any fsspec URL, for training to stream."""

from __future__ import annotations

import argparse

from signrec import ranges
from signrec.commands import options
from signrec.landmarks.shards import DTYPES, pack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="a landmark dataset: labels.csv or its folder")
    parser.add_argument("--out", required=True, help="the shard store: a new folder or fsspec URL")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="stored precision; float16 halves the size (read back as float32) [%(default)s]")
    parser.add_argument("--shard-mb", type=options.number(float, ranges.POSITIVE), default=256.0,
                        help="uncompressed size of a shard [%(default)s]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    options.add_json_flag(parser)
    parser.epilog = "Exit status: 0 all packed, 1 some landmark files unreadable (listed), 2 bad usage."


def run(args: argparse.Namespace) -> int:
    report = pack(args.data, args.out, args.dtype, args.shard_mb, progress=not args.quiet and not args.json)
    lines = [f"packed {report.packed} sequence(s), {report.frames} frames, into {report.shards} shard(s) "
             f"({report.bytes / 2**20:.1f} MiB) -> {report.out}"]
    lines += [f"  FAILED {reason}" for reason in report.failed]
    options.emit(args, report.to_dict(), "\n".join(lines))
    return 1 if report.failed else 0
