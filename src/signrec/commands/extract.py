"""`signrec extract`: videos -> landmark .npy files, on all cores, resumable, with a report of failures."""

from __future__ import annotations

import argparse

from signrec import ranges
from signrec.commands import options
from signrec.landmarks.shards import pack
from signrec.video.batch import extract_dataset, plan_jobs
from signrec.video.holistic import ExtractError

ENGINES = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a video, a folder of videos (recursive) or a dataset labels.csv")
    parser.add_argument("--out", required=True,
                        help="output folder: one .npy per video, labels.csv, manifest.json")
    parser.add_argument("--workers", type=options.number(int, ranges.AT_LEAST_ONE), default=None,
                        help="processes (default: all cores; with --engine ray: actors, default one per CPU of "
                             "the cluster)")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: a process pool on this machine; ray: actors on a Ray cluster [%(default)s]")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the cluster, `auto` (this node's) or ray://host:port "
                             "(default: start a local one)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose .npy already exists")
    parser.add_argument("--shards", metavar="URL", default=None,
                        help="then pack the landmarks into a shard store at URL (a new folder or fsspec URL), one "
                             "sequence in memory at a time; --out keeps the .npy files, so a rerun resumes")
    options.add_extract_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    options.add_json_flag(parser)
    parser.epilog = "Exit status: 0 all videos extracted, 1 some failed (listed), 2 bad usage."


def run(args: argparse.Namespace) -> int:
    executor = None
    if args.engine == "ray":
        from signrec.video.ray_engine import ray_engine

        executor = ray_engine(args.address, args.workers)
    elif args.address is not None:
        raise ExtractError("--address needs --engine ray")
    if args.shards is not None and not any(job.sample is not None for job in plan_jobs(args.input, args.out)):
        raise ExtractError(f"{args.input}: --shards needs labelled videos (a labels.csv, or <label>/<clip> "
                           "folders); none of these has a label")
    report = extract_dataset(args.input, args.out, options.extract_settings_from_args(args), args.workers, args.overwrite,
                             progress=not args.quiet and not args.json, executor=executor)
    lines = [f"extracted {len(report.done)} video(s), skipped {len(report.skipped)} already done, "
             f"failed {len(report.failed)}; {report.frames} frames in {report.seconds:.1f} s "
             f"({report.fps:.1f} frames/s) -> {report.out_dir}"]
    lines += [f"  FAILED {reason}" for reason in report.failed.values()]
    lines += [f"  warning {video}: {'; '.join(notes)}" for video, notes in report.warnings.items()]
    result = report.to_dict()
    if args.shards is not None and result["labels"] is not None:
        packed = pack(result["labels"], args.shards, progress=not args.quiet and not args.json)
        result["shards"] = packed.to_dict()
        lines.append(f"packed {packed.packed} sequence(s) into {packed.shards} shard(s) "
                     f"({packed.bytes / 2**20:.1f} MiB) -> {packed.out}")
        lines += [f"  FAILED {reason}" for reason in packed.failed]
    options.emit(args, result, "\n".join(lines))
    return 1 if report.failed or result.get("shards", {}).get("failed") else 0
