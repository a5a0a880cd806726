"""`signrec serve`: a model behind HTTP and WebSocket with a web page, after checking its address is free."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from signrec import SignrecError, ranges
from signrec.commands import options
from signrec.serve.app import RedactKey, check_address, create_app
from signrec.serve.settings import PORTS, WS_HARD_CAP, ServerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("model", help="model folder: RUN/model, made by `signrec train`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all) [%(default)s]")
    parser.add_argument("--port", type=options.number(int, PORTS), default=8000,
                        help="TCP port to listen on, 1-65535 [%(default)s]")
    options.add_backend_argument(parser)
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="require this key in the X-API-Key header; other users see it in `ps`, so "
                                       "prefer $SIGNREC_API_KEY or --api-key-file [$SIGNREC_API_KEY, else none: "
                                       "open to all]")
    key.add_argument("--api-key-file", type=Path, metavar="PATH",
                     help="read the key from this file (its one line), kept out of `ps` and the shell's history")
    parser.add_argument("--cors-origins", nargs="*", default=[], metavar="ORIGIN",
                        help="browser origins allowed to call the API, e.g. https://example.org ('*': any) [none]")
    parser.add_argument("--max-upload-mb", type=options.number(float, ranges.POSITIVE), default=defaults.max_upload_mb,
                        help=f"largest upload or stream message, in MB; larger gets 413 (a stream message over "
                             f"{WS_HARD_CAP} times this ends the stream) [%(default)s]")
    parser.add_argument("--max-duration-s", type=options.number(float, ranges.POSITIVE), default=defaults.max_duration_s,
                        help="longest video or landmark sequence, in seconds; longer gets 413 [%(default)s]")
    parser.add_argument("--max-fps", type=options.number(float, ranges.POSITIVE), default=defaults.max_fps,
                        help="faster videos are subsampled; a stream's camera frames taken faster than this are "
                             "dropped (429) [%(default)s]")
    parser.add_argument("--workers", type=options.number(int, ranges.AT_LEAST_ONE), default=defaults.workers,
                        help="videos processed at once [%(default)s]")
    parser.add_argument("--max-streams", type=options.number(int, ranges.AT_LEAST_ONE), default=defaults.max_streams,
                        help="live WebSocket streams at once [%(default)s]")
    parser.add_argument("--models-dir", type=Path, metavar="DIR",
                        help="where POST /v1/enroll writes personal models, and where earlier ones are found "
                             "[personal/ beside the model folder]")
    parser.add_argument("--max-enroll-mb", type=options.number(float, ranges.POSITIVE),
                        default=defaults.max_enroll_mb,
                        help="largest enrollment upload once unpacked (a zip's files together), in MB [%(default)s]")
    parser.add_argument("--quiet", action="store_true", help="no log line per request (warnings and errors only)")
    parser.epilog = ("Exit status: 0 stopped with Ctrl+C, 2 bad usage, a model that can not be loaded or an address "
                     "that can not be listened on (such as a port already in use).")


def read_key_file(path: Path) -> str:
    """The API key in `path`: its one line, without surrounding white space."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SignrecError(f"{path}: no such API key file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SignrecError(f"{path}: can not read the API key ({getattr(exc, 'strerror', None) or exc})") from None
    if not key or "\n" in key:
        raise SignrecError(f"{path}: expected the API key on one line, found {'nothing' if not key else 'more lines'}")
    return key


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    key = read_key_file(args.api_key_file) if args.api_key_file else args.api_key or os.environ.get("SIGNREC_API_KEY")
    return ServerSettings(api_key=key or None, cors_origins=tuple(args.cors_origins),
                          max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration_s,
                          max_fps=args.max_fps, workers=args.workers, max_streams=args.max_streams,
                          models_dir=str(args.models_dir) if args.models_dir else None,
                          max_enroll_mb=args.max_enroll_mb)


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from signrec.model.artifact import Classifier

    settings = settings_from_args(args)
    # Requests run side by side in threads beside MediaPipe; each classifier call is tiny, and torch's
    # intra-op threads fighting MediaPipe for the cores make it far slower (see live.LiveRecognizer).
    torch.set_num_threads(1)
    classifier = Classifier.load(args.model, backend=args.backend)
    check_address(args.host, args.port)
    app = create_app(classifier, settings, model_dir=args.model)
    print(f"signrec serve: {len(classifier.labels)} signs from {args.model} ({args.backend}); "
          f"page http://{args.host}:{args.port}/  on-device page http://{args.host}:{args.port}/app/  "
          f"docs http://{args.host}:{args.port}/docs\n"
          f"limits: {settings.summary()}", flush=True)
    if not settings.api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"signrec serve: warning: listening on {args.host} without --api-key: anyone who can reach this "
              "port can use the model", file=sys.stderr, flush=True)
    for name in ("uvicorn.access", "uvicorn.error"):  # HTTP lines, and WebSocket lines (logged on uvicorn.error)
        logging.getLogger(name).addFilter(RedactKey())
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                access_log=not args.quiet, ws_max_size=settings.ws_max_bytes)
    return 0
