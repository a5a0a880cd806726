"""The end-to-end demo (`make demo`): from public videos to a model that recognises a signer it never saw.

    signrec demo --out demo_out

1. obtain MLR511 Arabic Sign Language (10 signs, 8 signers, 800 videos) through the dataset registry
   (verified by checksum; a local $SIGNREC_DATA_MIRROR folder is read in place);
2. extract MediaPipe Holistic landmarks of every 2nd frame (7.5 fps; `--frame-step 1` for all) on all cores,
   once (cached; a second demo skips this);
3. train the default LSTM with user08 held out entirely and user07 for early stopping;
4. evaluate on user08: accuracy, macro-F1, confusion matrix, learning curves, misclassified clips;
5. predict one of user08's videos from the raw video file, as a user would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from signrec import ranges
from signrec.commands import options

DATASET = "mlr511_arsl"
TEST_SIGNER = "user08"
VAL_SIGNER = "user07"


def data_root() -> Path:
    """A local mirror folder is used in place (it is verified, not copied); otherwise the signrec cache."""
    from signrec.landmarks.registry import MIRROR_ENV
    from signrec.video.batch import cache_root

    mirror = Path(os.environ.get(MIRROR_ENV, ""))
    if str(mirror) not in ("", ".") and (mirror / DATASET).is_dir():
        return mirror
    return cache_root() / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo_out"),
                        help="where the run and report go [%(default)s]")
    parser.add_argument("--data-root", type=Path,
                        help="where the dataset is fetched to [a local $SIGNREC_DATA_MIRROR folder, used in place; "
                             "else the signrec cache]")
    parser.add_argument("--model", default="lstm", choices=("lstm", "transformer"),
                        help="network to train [%(default)s]")
    parser.add_argument("--frame-step", type=options.number(int, ranges.AT_LEAST_ONE), default=2,
                        help="extract every n-th video frame: 2 (7.5 fps) halves extraction, so that the whole demo "
                             "fits in 15 minutes on 2 cores; 1 for every frame [%(default)s]")
    options.add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from signrec.evaluate.report import evaluate
    from signrec.landmarks import dataset, registry
    from signrec.model.artifact import Classifier
    from signrec.recognize.predict import predict_files
    from signrec.train.config import TrainConfig
    from signrec.train.run import duration, train
    from signrec.train.run_folder import RunFolder
    from signrec.video.batch import open_dataset
    from signrec.video.settings import ExtractSettings

    out: Path = args.out
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str, text: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        if not args.json:
            print(f"[{sum(timings.values()):6.0f} s] {text}", flush=True)

    videos_csv = registry.dataset_path(DATASET, args.data_root or data_root())
    videos = dataset.read_labels(videos_csv)
    step("data", f"1/5 data: {len(videos)} videos, {len(dataset.labels_of(videos))} signs, "
                 f"{len(dataset.signers_of(videos))} signers in {videos_csv.parent} (all "
                 f"{len(registry.manifest(DATASET).files)} files match their sha256 checksums)")

    settings = ExtractSettings(frame_step=args.frame_step)
    store = open_dataset(videos_csv, settings=settings, progress=not args.json)
    step("extract", f"2/5 landmarks: {store.labels_csv.parent}")

    run = RunFolder(out / "run")
    if run.config.is_file():  # a previous demo's run: the demo always trains afresh
        shutil.rmtree(run.path)
    config = TrainConfig(model=args.model, test_signers=(TEST_SIGNER,), val_signers=(VAL_SIGNER,))
    metrics = train(store, run.path, config, progress=not args.json)
    assert metrics is not None  # a single process is always rank zero
    step("train", f"3/5 trained {args.model} on {len(dataset.signers_of(videos)) - 2} signers: "
                  f"{metrics['epochs']} epochs, best {metrics['best_epoch']}, {duration(metrics['fit_seconds'])}")

    classifier = Classifier.load(run.model)
    held_out = [s for s in store.samples if s.signer == TEST_SIGNER]
    report = evaluate(classifier, store, out / "report", run.log_csv, samples=held_out)
    step("evaluate", f"4/5 {TEST_SIGNER}, never seen in training: top-1 {report['top1']:.1%}, "
                     f"top-5 {report['top5']:.1%}, macro-F1 {report['macro_f1']:.3f} on {report['n']} clips")

    held_out_videos = sorted((s for s in videos if s.signer == TEST_SIGNER), key=lambda s: s.key)
    video = held_out_videos[len(held_out_videos) // 2]
    prediction = predict_files(classifier, [video.path])[0]
    # named from the dataset's folder: R01.mp4 alone is in every signer's and sign's folder
    name = Path(os.path.relpath(video.path.resolve(), videos_csv.parent.resolve())).as_posix()
    step("predict", f"5/5 {name} of {TEST_SIGNER} (truly {video.label!r}) -> {prediction.get('label')!r} "
                    f"({prediction.get('confidence', 0):.0%})")

    result: dict[str, Any] = {
        "dataset": str(videos_csv), "landmarks": str(store.labels_csv), "run": str(run),
        "model": str(run.model), "train": metrics,
        "evaluation": {k: report[k] for k in ("n", "top1", "top5", "macro_f1")},
        "report": report["files"], "prediction": {**prediction, "true": video.label}, "seconds": timings,
    }
    files = report["files"]
    text = "\n".join([
        "",
        f"model:              {run.model}",
        f"report:             {files['report']}",
        f"confusion matrix:   {files['confusion']}",
        f"learning curves:    {files.get('learning_curves', run.curves)}",
        f"misclassified:      {files['misclassified']}",
        f"total time:         {duration(sum(timings.values()))}",
        "",
        f"next: signrec predict {run.model} YOUR_VIDEO.mp4",
    ])
    options.emit(args, result, text)
    return 0
