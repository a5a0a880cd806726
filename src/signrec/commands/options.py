"""What several commands share: numeric options checked by name, --json, --backend, and the option groups of
extraction and of continuous recognition."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from signrec import ranges
from signrec.ranges import Range
from signrec.recognize.continuous import StreamSettings
from signrec.video.settings import HAND_MODELS, MODEL_FIELDS, ExtractSettings


def add_extract_arguments(parser: argparse.ArgumentParser, models: bool = True) -> None:
    """Extraction flags; `models=False` leaves out the landmark model choice, which a trained model fixes."""
    parser.add_argument("--max-side", type=number(int, ranges.NON_NEGATIVE), default=ExtractSettings.max_side,
                        help="downscale frames whose longer side is larger (0: never) [%(default)s]")
    parser.add_argument("--frame-step", type=number(int, ranges.AT_LEAST_ONE), default=ExtractSettings.frame_step,
                        help="keep every n-th frame [%(default)s]")
    if not models:
        return
    parser.add_argument("--no-face", dest="face", action="store_false",
                        help="skip the face model (face points NaN; ~4 ms a frame less)")
    parser.add_argument("--hand-model", choices=list(HAND_MODELS), default=ExtractSettings.hand_model,
                        help="MediaPipe hand landmark model; lite is ~7 ms a frame faster [%(default)s]")


def extract_settings_from_args(args: argparse.Namespace) -> ExtractSettings:
    models = {name: getattr(args, name) for name in MODEL_FIELDS if hasattr(args, name)}
    return ExtractSettings(max_side=args.max_side, frame_step=args.frame_step, **models)


_CLI_SETTINGS = ("threshold", "smoothing", "stride", "gap", "min_sign", "max_hold", "raise_level")


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """The stream settings a user tunes most, for every command that reads continuous signing."""
    group = parser.add_argument_group("continuous signing")
    defaults = StreamSettings()
    helps = {
        "threshold": "do not report a sign whose probability (0-1) is below this",
        "smoothing": "weight of the newest prediction in the live top-3 moving average (1 = no smoothing)",
        "stride": "while signing, update the live top-3 every N frames",
        "gap": "seconds with hands lowered that end a sign",
        "min_sign": "ignore raised-hand movements shorter than this many seconds",
        "max_hold": "seconds of hands held still (raised) that also end a sign",
        "raise_level": "a wrist higher than this many shoulder widths below the shoulders starts a sign",
    }
    types = {"threshold": number(float, ranges.PROBABILITY)}
    for name in _CLI_SETTINGS:
        default = getattr(defaults, name)
        group.add_argument("--" + name.replace("_", "-"), type=types.get(name, type(default)), default=default,
                           help=f"{helps[name]} [%(default)s]")


def stream_settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _CLI_SETTINGS}


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def number(kind: type, allowed: Range) -> Callable[[str], Any]:
    """argparse type of a number in a range; argparse names the option in the error
    ("argument --max-epochs: must be >= 1, got 0"), where a check further in would name a field."""
    test, text = allowed

    def parse(value: str) -> Any:
        parsed = kind(value)
        if not test(parsed):
            raise argparse.ArgumentTypeError(f"must be {text}, got {value}")
        return parsed

    parse.__name__ = kind.__name__  # argparse's own "invalid int value: 'x'"
    return parse


def emit(args: argparse.Namespace, result: Any, text: str) -> None:
    """Print `result` as JSON with --json, else the human-readable `text`."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        print(text)


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """--backend, with the runtimes of signrec.model.runtime as its choices (imported here: it loads torch, which
    commands without a model, such as extract, do without: seconds to start, and a second to exit)."""
    from signrec.model.runtime import DEFAULT_RUNTIME, RUNTIMES

    choices = "; ".join(f"{name}: {what}" for name, what in RUNTIMES.items())
    parser.add_argument("--backend", choices=list(RUNTIMES), default=DEFAULT_RUNTIME,
                        help=f"what runs the classifier ({choices}) [%(default)s]")
