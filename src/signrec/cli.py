"""The `signrec` command: it only dispatches. Each subcommand is a module of signrec.commands.

A command module defines `add_arguments(parser)` and `run(args) -> int` (exit status). Only the chosen
command's module is imported,
so `signrec --help` stays fast. A SignrecError, or an OSError (a file it can not write, such as a read-only
--out), ends the command with its message and exit 2, after
`args.prog` (`signrec data`; a module with actions of its own sets it to `signrec data fetch` and the like).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from signrec import SignrecError, __version__

# name: (module, help, add_arguments function, run function) in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("data", "list and fetch public sign-language datasets"),
    "extract": ("extract", "videos -> MediaPipe Holistic landmark .npy files"),
    "import": ("import_", "convert MP_Data, Kaggle ISLR parquet or hands-only arrays into a landmark dataset"),
    "export-mpdata": ("export_mpdata", "write a landmark dataset in the tutorial MP_Data 1662 layout"),
    "show": ("show", "draw landmarks (over the video) to a PNG contact sheet, GIF or MP4"),
    "train": ("train", "train a model on a landmark or video dataset"),
    "evaluate": ("evaluate", "score a model on a dataset: accuracy, F1, confusion matrix"),
    "card": ("card", "what a new user can expect of a model: accuracy on a new person, after enrollment"),
    "predict": ("predict", "recognise the sign(s) in videos or landmark files"),
    "live": ("live", "recognise signs live from a camera or video stream"),
    "serve": ("serve", "HTTP/WebSocket API and web page for a model"),
    "export": ("export", "export a model to ONNX for ONNX Runtime (mobile, web, servers)"),
    "demo": ("demo", "fetch data, extract, train, evaluate and predict, end to end"),
}
"""name: (module in signrec.commands, help), in pipeline order."""

DESCRIPTION = ("Recognise sign language in video: MediaPipe Holistic landmarks, a classifier you train on them, "
               "and answers for files, a camera or an HTTP server.")
EPILOG = ("The usual order: data (fetch a dataset), extract (videos -> landmarks; or import other formats), train, "
          "evaluate, then predict, live or serve; export adds an ONNX model for them, show draws landmarks, and demo "
          "runs the whole pipeline on a public dataset. `signrec COMMAND --help` gives a command's options.")

EXIT_ERROR = 2
"""Exit status for a usage or input error. Partial failures (some files bad) use 1."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signrec", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"signrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(prog=p.prog)
        if name == command:
            _command(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    try:
        with native_logs_hidden():
            return int(_command(COMMANDS[args.command][0]).run(args) or 0)
    except SignrecError as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as exc:  # a file or folder it can not write or read (read-only --out, disk full, ...)
        where = f"{exc.filename}: " if exc.filename is not None else ""
        why = "a file is where a folder should be" if isinstance(exc, FileExistsError | NotADirectoryError) \
            else exc.strerror or str(exc)
        print(f"{args.prog}: error: {where}{why}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted", file=sys.stderr)
        return 130


def _command(module: str) -> Any:
    return importlib.import_module(f"signrec.commands.{module}")


@contextlib.contextmanager
def native_logs_hidden() -> Iterator[None]:
    """Keep MediaPipe's and TensorFlow Lite's C++ log lines (about ten warnings for every graph built, that is
    for every video) out of the terminal, where they would bury signrec's messages and progress bars.

    They write to file descriptor 2 directly, so it points at /dev/null while the command runs, and Python's
    sys.stderr at a copy of the real one: signrec's own output, warnings and tracebacks still show. Failures
    reach the user as Python exceptions either way, and a crash inside native code (segfault, abort) prints
    Python's traceback through faulthandler. SIGNREC_NATIVE_LOGS=1 keeps the C++ lines (to debug such a crash).
    Nothing changes when sys.stderr is not the process's own, as under pytest's capture.
    """
    if os.environ.get("SIGNREC_NATIVE_LOGS") or sys.stderr is not sys.__stderr__ or sys.stderr is None:
        yield
        return
    original = sys.stderr
    original.flush()
    copy = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    with open(copy, "w", buffering=1, encoding=original.encoding, errors=original.errors) as stream:
        sys.stderr = stream
        crash_report = not faulthandler.is_enabled()
        if crash_report:
            faulthandler.enable(stream)
        try:
            yield
        finally:
            if crash_report:
                faulthandler.disable()
            stream.flush()
            os.dup2(copy, 2)
            sys.stderr = original


if __name__ == "__main__":
    sys.exit(main())
