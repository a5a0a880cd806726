"""`signrec data list|fetch`: the named public datasets, fetched and checked against their sha256 lists."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict
from pathlib import Path

from signrec.commands import options
from signrec.landmarks.registry import DATASETS, MIRROR_ENV, fetch, manifest, manifest_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    list_p = sub.add_parser("list", help="the named datasets: description, size, source, licence, citation and "
                                         "checksum list")
    fetch_p = sub.add_parser("fetch", help=f"fetch and verify a dataset (from ${MIRROR_ENV})")
    fetch_p.add_argument("name", help="dataset name, see `signrec data list`")
    fetch_p.add_argument("--to", type=Path, required=True, help="folder; the dataset goes into TO/NAME")
    for action in (list_p, fetch_p):
        action.set_defaults(prog=action.prog)  # errors read `signrec data fetch: error: ...`
        options.add_json_flag(action)


def run(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        rows = []
        for ds in DATASETS.values():
            man = manifest(ds.name)
            rows.append({**asdict(ds), "files": len(man.files), "bytes": man.total_bytes,
                         "checksums": str(manifest_file(ds.name))})
        options.emit(args, rows, "\n\n".join(map(_describe, rows)))
        return 0
    report = fetch(args.name, args.to)
    options.emit(args, report.to_dict(), report.text())
    return 1 if report.errors else 0


def _describe(row: dict[str, object]) -> str:
    """One dataset of `signrec data list`, as text."""
    indent = " " * 4
    fields = [("", row["description"]), ("licence: ", row["licence"]), ("source: ", row["source"]),
              ("cite: ", row["citation"]), ("checksums: ", f"{row['files']} files, sha256 in {row['checksums']}")]
    return "\n".join([f"{row['name']} ({row['kind']}, {row['files']} files, {row['bytes'] / 1e6:.1f} MB)"] + [
        textwrap.fill(f"{label}{value}", width=110, initial_indent=indent, subsequent_indent=indent * 2)
        for label, value in fields])
