"""`signrec evaluate`: a model scored on a dataset, with report.json, misclassified.csv and plots.

Clips of signers the model trained or early-stopped on are scored too, with a warning: their accuracy says
little about new signers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from signrec.commands import options
from signrec.evaluate.card import card_text
from signrec.evaluate.report import _few, evaluate


# ---- command line --------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model folder (e.g. RUN/model)")
    parser.add_argument("data", help="labels.csv (or folder) of landmark files or videos, or a shard store "
                                     "(`signrec pack`; a folder or fsspec URL), streamed")
    parser.add_argument("--out", type=Path, help="where to write report and plots (default: MODEL/../evaluation)")
    options.add_backend_argument(parser)
    options.add_json_flag(parser)
    parser.epilog = ("Clips of signers the model was trained or early-stopped on (listed in its model.json) are "
                     "scored too, but with a warning, and counted under seen_signers in the --json report: for "
                     "accuracy on new people, evaluate on signers the model never saw. Exit status: 0 done, "
                     "1 some files could not be read (listed), 2 bad usage.")


def run(args: argparse.Namespace) -> int:
    from signrec.model.artifact import Classifier
    from signrec.train.run_folder import RunFolder
    from signrec.video.batch import open_store

    classifier = Classifier.load(args.model, backend=args.backend)
    store = open_store(args.data, settings=classifier.landmark_settings(), progress=not args.json)
    classifier.check_landmarks(store.landmark_models, store.name)
    if not args.json:
        for note in store.notes:  # no person found, a repeated row used once (unreadable files: in the report)
            print(f"warning: {note}", file=sys.stderr)
    run = RunFolder.of_model(args.model)
    out = args.out or Path(args.model).resolve().parent / "evaluation"
    saved_split = run.read_json(run.split, "model's run") if run is not None and run.split.is_file() else None
    report = evaluate(classifier, store, out, run.log_csv if run else None, saved_split)
    options.emit(args, report, format_report(report))
    return 1 if report["bad_files"] else 0


def format_report(report: dict[str, Any], worst: int = 10) -> str:
    lines = []
    seen = report["seen_signers"]
    if seen["clips"]:
        parts = [f"{name} {', '.join(seen[part])}" for part, name in (("train", "trained on"),
                                                                      ("val", "early-stopped on")) if seen[part]]
        lines += [f"WARNING: {seen['clips']} of {report['n']} clips are by signers the model has seen "
                  f"({'; '.join(parts)}): their scores overstate accuracy on new signers.", ""]
    if report["unknown_labels"]:
        lines += [f"left out {_clips(report['skipped_unknown_label'])}: their labels "
                  f"({_few(report['unknown_labels'])}) are not among the model's", ""]
    lines += [f"{_clips(report['n'])}: top-1 {report['top1']:.1%}  top-5 {report['top5']:.1%}  "
              f"macro-F1 {report['macro_f1']:.3f}", "", f"{'class':<24} precision  recall  clips"]
    for label, c in report["per_class"].items():
        if c["support"]:
            lines.append(f"{label:<24} {c['precision']:9.1%} {c['recall']:7.1%} {c['support']:6d}")
    wrong = report["misclassified"]
    if wrong:
        lines += ["", f"{len(wrong)} misclassified" + (f" (first {worst})" if len(wrong) > worst else "") + ":"]
        lines += [f"  {w['path']}: {w['true']} -> {w['pred']} ({w['confidence']:.0%})" for w in wrong[:worst]]
    for problem in report["bad_files"]:
        lines.append(f"skipped: {problem}")
    lines += ["", card_text(report["card"])]
    if "files" in report:
        lines += ["", "written: " + ", ".join(report["files"].values())]
    return "\n".join(lines)


def _clips(n: int) -> str:
    return f"{n} clip" + ("" if n == 1 else "s")
