"""Continuous signing: word accuracy on "sentences" made of real MLR511 clips of held-out signers.

    python benchmarks/continuous.py MODEL --signers user08 [--sentences 10 --words 5 --seed 0]

Each sentence joins `--words` clips of one signer (random signs, never the same sign twice in a row,
random repetitions) into one 15 fps video with 3 still frames between clips, as a person resting
briefly between signs. The video goes through the whole pipeline (MediaPipe Holistic on the joined
video, then continuous.transcribe). Word accuracy = 1 - edit distance / reference words, summed over
all sentences. For comparison the same clips are also classified one by one (cut at the known clip
boundaries), which separates segmentation errors from classification errors.
Use signers the model was not trained on (e.g. `signrec train ... --test-signers user08`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import cv2
from tqdm import tqdm

from signrec.landmarks.dataset import read_labels
from signrec.model.artifact import Classifier
from signrec.recognize.continuous import edit_distance, segments, transcribe
from signrec.video.holistic import extract_video

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
STILL = 3


def join_clips(clips: list[Path], out: Path) -> list[tuple[int, int]]:
    """Write the clips one after another (STILL held frames between); return each clip's frame range."""
    writer = None
    bounds, n = [], 0
    for i, clip in enumerate(clips):
        cap = cv2.VideoCapture(str(clip))
        fps = cap.get(cv2.CAP_PROP_FPS) or 15.0
        frames = []
        while (read := cap.read())[0]:
            frames.append(read[1])
        cap.release()
        if writer is None:
            h, w = frames[0].shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        still = STILL if i < len(clips) - 1 else 0
        bounds.append((n, n + len(frames)))
        n += len(frames) + still
        for frame in frames + [frames[-1]] * still:
            writer.write(frame)
    assert writer is not None
    writer.release()
    return bounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=DATA / "mlr511_arsl" / "labels.csv",
                        help="labels.csv of videos with a signer column [%(default)s]")
    parser.add_argument("--signers", nargs="+", required=True, help="held-out signers to build sentences from")
    parser.add_argument("--sentences", type=int, default=10, help="sentences per signer [%(default)s]")
    parser.add_argument("--words", type=int, default=5, help="signs per sentence [%(default)s]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    classifier = Classifier.load(args.model)
    samples = [s for s in read_labels(args.data) if s.label in classifier.labels]
    rng = random.Random(args.seed)
    rows, details = [], []
    for signer in args.signers:
        clips = {label: [s.path for s in samples if s.signer == signer and s.label == label]
                 for label in classifier.labels}
        clips = {label: paths for label, paths in clips.items() if paths}
        if len(clips) < 2:
            raise SystemExit(f"{args.data}: signer {signer} has clips of fewer than 2 of the model's signs")
        errors = ref_words = iso_right = cuts_right = 0
        for k in tqdm(range(args.sentences), desc=signer, unit="sentence"):
            words: list[str] = []
            while len(words) < args.words:
                label = rng.choice(sorted(clips))
                if not words or label != words[-1]:
                    words.append(label)
            chosen = [rng.choice(clips[w]) for w in words]
            with tempfile.TemporaryDirectory() as tmp:
                video = Path(tmp) / f"{signer}-{k}.mp4"
                bounds = join_clips(chosen, video)
                array, info = extract_video(video)
            fps = info["fps"] or 15.0
            hyp = [w["label"] for w in transcribe(classifier, array, fps)]
            errors += edit_distance(words, hyp)
            ref_words += len(words)
            cuts_right += len(segments(array, fps)) == len(words)
            iso = classifier.predict_proba([array[a:b] for a, b in bounds]).argmax(axis=1)
            iso_right += sum(classifier.labels[i] == w for i, w in zip(iso, words, strict=True))
            details.append({"signer": signer, "reference": words, "hypothesis": hyp,
                            "clips": [str(c.relative_to(args.data.parent)) for c in chosen]})
        rows.append({"signer": signer, "sentences": args.sentences, "words": ref_words,
                     "word_accuracy": 1 - errors / ref_words, "isolated_accuracy": iso_right / ref_words,
                     "sentences_cut_right": cuts_right / args.sentences})
    total_words = sum(r["words"] for r in rows)
    overall = {
        "word_accuracy": sum(r["word_accuracy"] * r["words"] for r in rows) / total_words,
        "isolated_accuracy": sum(r["isolated_accuracy"] * r["words"] for r in rows) / total_words,
    }
    if args.json:
        print(json.dumps({"rows": rows, "overall": overall, "sentences": details},
                         indent=2))
        return 0
    print("| signer | sentences | words | word accuracy (continuous) | same clips one by one | "
          "sentences cut into the right number of signs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['signer']} | {r['sentences']} | {r['words']} | {r['word_accuracy']:.3f} | "
              f"{r['isolated_accuracy']:.3f} | {r['sentences_cut_right']:.0%} |")
    print(f"| all | {sum(r['sentences'] for r in rows)} | {total_words} | {overall['word_accuracy']:.3f} | "
          f"{overall['isolated_accuracy']:.3f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
