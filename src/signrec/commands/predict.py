"""`signrec predict`: the sign in each video or landmark file, or with --continuous the signs of a recording.

A file that can not be read is reported and the others are still predicted (exit status 1)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from signrec import SignrecError, ranges
from signrec.commands import options
from signrec.recognize.predict import predict_files, transcribe_files


def format_table(results: Sequence[dict[str, Any]]) -> str:
    width = min(60, max(len(r["path"]) for r in results))
    lines = []
    for r in results:
        name = r["path"] if len(r["path"]) <= width else "..." + r["path"][-(width - 3):]
        if "error" in r:
            lines.append(f"{name:<{width}}  ERROR {r['error']}")
        elif "words" in r:
            words = "  ".join(f"{w['label']} [{w['start']:.2f}-{w['end']:.2f}s {w['confidence']:.0%}]"
                              for w in r["words"]) or "(no sign found)"
            lines.append(f"{name:<{width}}  {words}")
        else:
            top = "  ".join(f"{t['label']} {t['p']:.1%}" for t in r["top"])
            lines.append(f"{name:<{width}}  {r['label']:<14} | {top}")
        for reason in r.get("explain", {}).get("reasons", []):
            lines.append(f"    why: {reason['text']}")
        for near in r.get("explain", {}).get("nearest", []):
            lines.append(f"    near: {near['label']} (distance {near['distance']:.2f}) {near['path']}")
        if r.get("explain", {}).get("picture"):
            lines.append(f"    drawn: {r['explain']['picture']}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder: RUN/model, made by `signrec train`")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="video files or landmark .npy files")
    parser.add_argument("--top-k", type=options.number(int, ranges.AT_LEAST_ONE), default=3,
                        help="how many labels to list per file [%(default)s]")
    parser.add_argument("--threshold", type=options.number(float, ranges.PROBABILITY),
                        help='below this probability (0-1) the answer is "unknown"; default: the model\'s threshold '
                             "calibrated on its validation signers (0.4 for models trained before), as in live")
    options.add_backend_argument(parser)
    parser.add_argument("--continuous", action="store_true",
                        help="each input is a sequence of signs: print words with start/end times")
    parser.add_argument("--fps", type=options.number(float, ranges.POSITIVE),
                        help="frame rate of .npy inputs for --continuous (videos know theirs)")
    parser.add_argument("--explain", action="store_true",
                        help="say why in words (no hands, person cut off, too short, low confidence, not a "
                             "vocabulary sign) and list the nearest training examples")
    parser.add_argument("--explain-out", type=Path, metavar="DIR",
                        help="with --explain, draw each input beside its nearest training examples into DIR/<name>.explain.png")
    options.add_json_flag(parser)
    parser.epilog = "Exit status: 0 every input predicted, 1 some inputs failed (listed), 2 bad usage or model."


def run(args: argparse.Namespace) -> int:
    from signrec.model.artifact import Classifier

    classifier = Classifier.load(args.model, backend=args.backend)
    if args.explain_out is not None and not args.explain:
        raise SignrecError("--explain-out needs --explain")
    if args.explain:
        if args.continuous:
            raise SignrecError("--explain explains one sign per input; leave out --continuous")
        from signrec.model.unknown import threshold as model_threshold
        from signrec.recognize.explain import explain_files

        threshold = args.threshold if args.threshold is not None else model_threshold(classifier.meta)
        results = explain_files(classifier, args.inputs, args.top_k, threshold, args.explain_out)
    elif args.continuous:
        results = transcribe_files(classifier, args.inputs, args.fps, args.threshold)
    else:
        results = predict_files(classifier, args.inputs, args.top_k, args.threshold,
                                progress=not args.json and len(args.inputs) > 1)
    options.emit(args, results, format_table(results))
    return 1 if any("error" in r for r in results) else 0
