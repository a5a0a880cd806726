"""`signrec show`: landmarks drawn (over their video) as a PNG contact sheet, a GIF or an MP4."""

from __future__ import annotations

import argparse
from pathlib import Path

from signrec import ranges
from signrec.commands import options
from signrec.video.show import SHEET_FRAMES, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("landmarks", type=Path,
                        help="a landmark .npy file (T, 543, 3), or hands-only (T, 2, 21, 3)")
    parser.add_argument("--video", type=Path, help="draw over this video (the one the landmarks came from)")
    parser.add_argument("--out", type=Path, required=True,
                        help=".png/.jpg: contact sheet; .gif/.mp4: animation")
    parser.add_argument("--frames", type=options.number(int, ranges.AT_LEAST_ONE),
                        help=f"how many evenly spaced frames (default: {SHEET_FRAMES} for a sheet, all for an animation)")
    parser.add_argument("--width", type=options.number(int, ranges.AT_LEAST_ONE), default=320,
                        help="width of one frame in pixels (default 320)")
    parser.add_argument("--fps", type=options.number(float, ranges.POSITIVE),
                        help="animation speed (default: the video's, else 15)")
    parser.add_argument("--aspect", type=options.number(float, ranges.POSITIVE), default=1.0,
                        help="without --video: the source video's width/height (e.g. 1.78 for 16:9), "
                             "so that image-normalised landmarks keep their proportions (default 1)")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    result = render(args.landmarks, args.out, video=args.video, frames=args.frames, width=args.width, fps=args.fps,
                    aspect=args.aspect)
    options.emit(args, result, f"wrote {result['out']} ({len(result['frames'])} frames, "
                       f"{result['size'][0]}x{result['size'][1]} px)")
    return 0
