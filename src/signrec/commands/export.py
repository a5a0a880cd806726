"""`signrec export`: a model folder -> ONNX, checked against torch on real sequences before it is written."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from signrec import ranges
from signrec.commands import options
from signrec.model.artifact import ONNX, Classifier
from signrec.model.export import DEFAULT_OPSET, check_sequences, export_onnx
from signrec.model.runtime import OnnxNetwork


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model folder: RUN/model, made by `signrec train`")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format [%(default)s]")
    parser.add_argument("--out", help=f"output file, or a folder to write {ONNX} into [MODEL/{ONNX}, where "
                                      "`--backend onnxruntime` looks]")
    parser.add_argument("--opset", type=options.number(int, ranges.AT_LEAST_ONE), default=DEFAULT_OPSET,
                        help="ONNX opset [%(default)s]")
    parser.add_argument("--check", nargs="+", default=[], metavar="FILE",
                        help="real inputs for the parity check: landmark .npy, videos or a labels.csv "
                             "[the model's training data, if it is still there]")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    classifier = Classifier.load(args.model)
    out = Path(args.out) if args.out else Path(args.model) / ONNX
    if out.is_dir():  # a folder, as for cp: the file goes into it
        out = out / ONNX
    path = export_onnx(classifier, out, check_sequences(classifier, args.check), opset=args.opset)
    check = json.loads(OnnxNetwork(path).metadata["signrec.parity"])
    result = {"path": str(path), "format": "onnx", "opset": args.opset, "bytes": path.stat().st_size,
              "parity": check}
    options.emit(args, result, f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {args.opset})\n"
                       f"parity vs torch on {check['sequences']} real sequences ({min(check['frames'])}-"
                       f"{max(check['frames'])} frames): max |logit difference| = {check['max_abs_diff']:.2e} "
                       f"(tolerance {check['tolerance']:.0e}) OK")
    return 0
