"""`signrec export-mpdata`: a landmark dataset -> the tutorial's MP_Data layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from signrec.commands import options
from signrec.landmarks.formats import export_mpdata


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="landmark dataset: labels.csv or its folder")
    parser.add_argument("--out", type=Path, required=True,
                        help="the MP_Data folder to write: OUT/<label>/<index>/<frame>.npy (characters that are "
                             "not allowed in Windows file names become _)")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    report = export_mpdata(args.data, args.out)
    options.emit(args, report.to_dict(), report.text("exported"))
    return 1 if report.failed else 0
