"""`signrec record`: record your own signs into a dataset, with quality checks, in a window or headless."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from signrec import SignrecError, ranges
from signrec.commands import options
from signrec.video.record import Window, check_signs, headless_review, record
from signrec.video.sources import open_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signs", required=True, help="the signs to record, comma-separated: hello,thanks")
    parser.add_argument("--takes", type=options.number(int, ranges.AT_LEAST_ONE), default=5,
                        help="takes of each sign [%(default)s]")
    parser.add_argument("--out", required=True, help="dataset folder (labels.csv + landmarks/); a rerun continues")
    parser.add_argument("--countdown", type=options.number(float, ranges.NON_NEGATIVE), default=3.0,
                        help="seconds to get ready before each take (camera only) [%(default)s]")
    parser.add_argument("--seconds", type=options.number(float, ranges.POSITIVE), default=3.0,
                        help="length of a take in seconds [%(default)s]")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--camera", type=options.number(int, ranges.NON_NEGATIVE), default=0, metavar="N",
                       help="camera index [%(default)s]")
    where.add_argument("--video", help="a video file instead of the camera, cut into takes by time (scripts, tests)")
    parser.add_argument("--headless", action="store_true",
                        help="no window: a bad take is reported and retaken, up to --retries, then skipped")
    parser.add_argument("--retries", type=options.number(int, ranges.NON_NEGATIVE), default=2,
                        help="with --headless, retakes of a bad take before it is skipped [%(default)s]")
    parser.add_argument("--keep-video", action="store_true", help="also keep each take's video (videos/)")
    parser.add_argument("--signer", help="the signer's name, written to labels.csv (for signer-independent splits)")
    options.add_extract_arguments(parser)
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    if not args.headless and sys.platform.startswith("linux") and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        raise SignrecError("no display to open a window on; use --headless")
    settings = options.extract_settings_from_args(args)
    signs = check_signs(args.signs.split(","))
    window = None if args.headless else Window()
    source = open_source(Path(args.video) if args.video else args.camera)
    try:
        report = record(source, args.out, signs, args.takes, settings, seconds=args.seconds,
                        countdown_s=args.countdown, uses_face=settings.face, keep_video=args.keep_video,
                        retries=args.retries, signer=args.signer,
                        review=window.review if window else headless_review,
                        show=window.show if window else None,
                        progress=None if args.json else lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        source.close()
        if window:
            window.close()
    lines = [f"{len(report.kept)} takes kept in {args.out}"]
    lines += [f"skipped {rel}: {' '.join(why)}" for rel, why in report.skipped.items()]
    if report.stopped:
        lines.append(f"{report.stopped}; not recorded yet: {', '.join(report.missing) or 'none'} "
                     "(run the same command again to continue)")
    options.emit(args, report.to_json(), "\n".join(lines))
    return 1 if report.skipped or report.missing else 0
