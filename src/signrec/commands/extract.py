"""`signrec extract`: videos -> landmark .npy files, on all cores, resumable, with a report of failures."""

from __future__ import annotations

import argparse

from signrec import ranges
from signrec.commands import options
from signrec.video.batch import extract_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a video, a folder of videos (recursive) or a dataset labels.csv")
    parser.add_argument("--out", required=True,
                        help="output folder: one .npy per video, labels.csv, manifest.json")
    parser.add_argument("--workers", type=options.number(int, ranges.AT_LEAST_ONE), default=None,
                        help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose .npy already exists")
    options.add_extract_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    options.add_json_flag(parser)
    parser.epilog = "Exit status: 0 all videos extracted, 1 some failed (listed), 2 bad usage."


def run(args: argparse.Namespace) -> int:
    report = extract_dataset(args.input, args.out, options.extract_settings_from_args(args), args.workers, args.overwrite,
                             progress=not args.quiet and not args.json)
    lines = [f"extracted {len(report.done)} video(s), skipped {len(report.skipped)} already done, "
             f"failed {len(report.failed)}; {report.frames} frames in {report.seconds:.1f} s "
             f"({report.fps:.1f} frames/s) -> {report.out_dir}"]
    lines += [f"  FAILED {reason}" for reason in report.failed.values()]
    lines += [f"  warning {video}: {'; '.join(notes)}" for video, notes in report.warnings.items()]
    options.emit(args, report.to_dict(), "\n".join(lines))
    return 1 if report.failed else 0
