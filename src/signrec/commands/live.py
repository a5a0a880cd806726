"""`signrec live`: recognise signs from a camera or stream, in a window or as JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2

from signrec import SignrecError, ranges
from signrec.commands import options
from signrec.model.artifact import Classifier
from signrec.recognize.live import LiveRecognizer, draw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder: RUN/model, made by `signrec train`")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--camera", type=options.number(int, ranges.NON_NEGATIVE), default=0, metavar="N",
                       help="camera index [%(default)s]")
    where.add_argument("--video", help="a video file, read as if it were a camera")
    where.add_argument("--url", help="a stream URL (rtsp://, http://, ...)")
    parser.add_argument("--headless", action="store_true",
                        help="no window: print JSON lines (t, top, words, signing, latency_ms), then a summary")
    parser.add_argument("--every-frame", action="store_true",
                        help="with --headless, print a line for every frame, not only when the answer changes")
    parser.add_argument("--realtime", action="store_true", help="pace a --video at its frame rate")
    options.add_backend_argument(parser)
    parser.add_argument("--threads", type=options.number(int, ranges.AT_LEAST_ONE), default=1,
                        help="torch threads for the classifier (1 keeps per-frame latency steady) [%(default)s]")
    options.add_extract_arguments(parser, models=False)  # the model says which landmark models made its data
    options.add_stream_arguments(parser)


def run(args: argparse.Namespace) -> int:
    source = Path(args.video) if args.video else args.url or args.camera  # a --video is a file, whatever its name
    if not args.headless and sys.platform.startswith("linux") and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        raise SignrecError("no display to open a window on; use --headless for JSON lines")
    classifier = Classifier.load(args.model, backend=args.backend)
    last: tuple[Any, ...] | None = None
    with LiveRecognizer(classifier, source, options.extract_settings_from_args(args), realtime=args.realtime,
                        threads=max(1, args.threads), **options.stream_settings_from_args(args)) as live:
        try:
            for update in live:
                if args.headless:
                    key = (update.state["signing"], [label for label, _p in update.state["top"][:1]],
                           len(update.state["words"]))
                    if args.every_frame or key != last:
                        print(json.dumps(update.to_json(), ensure_ascii=False), flush=True)
                    last = key
                else:
                    cv2.imshow("signrec live (q to quit)", draw(update))
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
        finally:
            if not args.headless:
                cv2.destroyAllWindows()
        live.finish()
        summary = live.summary()
    if args.headless:
        print(json.dumps({"done": True, **summary}, ensure_ascii=False), flush=True)
    else:
        print(" ".join(w["label"] for w in summary["words"]) or "(no signs recognised)")
        made = summary["landmarks"]
        print(f"{summary['frames']} frames, latency p50 {summary['latency_ms']['p50']} ms, "
              f"p95 {summary['latency_ms']['p95']} ms (landmarks: face {'on' if made['face'] else 'off'}, "
              f"{made['hand_model']} hands)")
    return 0
