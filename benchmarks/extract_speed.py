"""Landmark extraction speed: `signrec extract` against the plain tutorial loop, side by side.

The same real MLR511 clips are re-encoded (same codec) at 640x360 and 1920x1080, then extracted by
  - the tutorial loop: cv2 read -> Holistic.process -> numpy, one process, one Holistic per video;
  - signrec extract with 1 and with 2 workers;
  - two tutorial loops side by side in two processes, each on half the clips: the plain way to use a
    second core.
The methods take turns, round after round (--rounds), in reverse order every other round, so that a
machine that speeds up or slows down during the run affects them alike; times are summed over the rounds.
Each method's CPU time (this process and its workers) is measured too: "cores busy" is CPU time over wall
time, so a method that already keeps more than one core busy on its own has less to gain from a second.
A second table measures how far downscaling 1080p frames to 640 px moves the landmarks, against
running MediaPipe on the full 1080p frames.

    .venv/bin/python benchmarks/extract_speed.py [--clips 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from signrec import landmarks
from signrec.landmarks.dataset import read_labels
from signrec.video.batch import extract_dataset
from signrec.video.holistic import extract_video
from signrec.video.settings import ExtractSettings

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
SIZES = {"640p": (640, 360), "1080p": (1920, 1080)}


def make_clips(n: int, root: Path) -> dict[str, list[Path]]:
    """n clips spread over signers and signs, written at each size with the same codec."""
    samples = read_labels(DATA / "mlr511_arsl" / "labels.csv")
    picked = samples[:: max(1, len(samples) // n)][:n]
    out: dict[str, list[Path]] = {name: [] for name in SIZES}
    for i, sample in enumerate(picked):
        cap = cv2.VideoCapture(str(sample.path))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        for name, size in SIZES.items():
            path = root / name / f"clip{i:02d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, size)
            for frame in frames:
                writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
            writer.release()
            out[name].append(path)
    return out


def tutorial_loop(videos: list[Path], out: Path) -> int:
    """The popular tutorial's extraction, kept as written there (mediapipe_detection + extract_keypoints)."""
    import mediapipe as mp

    frames = 0
    out.mkdir(parents=True, exist_ok=True)
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        keypoints = []
        with mp.solutions.holistic.Holistic(min_detection_confidence=0.5, min_tracking_confidence=0.5) as holistic:
            while cap.isOpened():
                ok, frame = cap.read()
                if not ok:
                    break
                image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                image.flags.writeable = False
                results = holistic.process(image)
                pose = (np.array([[r.x, r.y, r.z, r.visibility] for r in results.pose_landmarks.landmark]).flatten()
                        if results.pose_landmarks else np.zeros(33 * 4))
                face = (np.array([[r.x, r.y, r.z] for r in results.face_landmarks.landmark]).flatten()
                        if results.face_landmarks else np.zeros(468 * 3))
                lh = (np.array([[r.x, r.y, r.z] for r in results.left_hand_landmarks.landmark]).flatten()
                      if results.left_hand_landmarks else np.zeros(21 * 3))
                rh = (np.array([[r.x, r.y, r.z] for r in results.right_hand_landmarks.landmark]).flatten()
                      if results.right_hand_landmarks else np.zeros(21 * 3))
                keypoints.append(np.concatenate([pose, face, lh, rh]))
                frames += 1
        cap.release()
        np.save(out / f"{video.stem}.npy", np.array(keypoints))
    return frames


def two_tutorial_loops(videos: list[Path], out: Path) -> int:
    """The tutorial loop in two spawned processes at once, the clips dealt out alternately."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    halves = [videos[0::2], videos[1::2]]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        return sum(pool.map(tutorial_loop, halves, [out / "a", out / "b"]))


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (the workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn, *args) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and frames of one run."""
    start, cpu = time.perf_counter(), cpu_seconds()
    frames = fn(*args)
    return time.perf_counter() - start, cpu_seconds() - cpu, frames


def signrec_run(videos: list[Path], out: Path, workers: int) -> int:
    report = extract_dataset(videos[0].parent, out, ExtractSettings(), workers=workers, overwrite=True,
                             progress=False)
    assert not report.failed, report.failed
    return report.frames


def downscale_error(videos: list[Path]) -> dict[str, float]:
    """Landmark difference, in normalised image units, between 640 px inference and full 1080p inference."""
    diffs, both, either = [], 0, 0
    for video in videos:
        small, _ = extract_video(video, ExtractSettings(max_side=640))
        full, _ = extract_video(video, ExtractSettings(max_side=0))
        for sl in landmarks.PARTS.values():
            a, b = small[:, sl, :2], full[:, sl, :2]
            found_a, found_b = ~np.isnan(a[..., 0]).all(1), ~np.isnan(b[..., 0]).all(1)
            both += int(np.sum(found_a & found_b))
            either += int(np.sum(found_a | found_b))
            diffs.append(np.abs(a[found_a & found_b] - b[found_a & found_b]).ravel())
    d = np.concatenate(diffs)
    return {"median": float(np.median(d)), "p95": float(np.percentile(d, 95)), "agree": both / max(1, either)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    methods = (("tutorial loop (1 process)", tutorial_loop, ()),
               ("signrec extract --workers 1", signrec_run, (1,)),
               ("signrec extract --workers 2", signrec_run, (2,)),
               ("2 tutorial loops, 1 process each", two_tutorial_loops, ()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = make_clips(args.clips, root / "in")
        import mediapipe  # noqa: F401  loaded before timing: in-process methods then all find it loaded
        seconds: dict[tuple[str, str], float] = {}
        cpu: dict[tuple[str, str], float] = {}
        frames: dict[tuple[str, str], int] = {}
        for turn in range(args.rounds):
            for size, videos in clips.items():
                for method, fn, extra in methods if turn % 2 == 0 else methods[::-1]:
                    took, used, n = timed(fn, videos, root / "out" / size / method[:7] / str(extra), *extra)
                    seconds[(size, method)] = seconds.get((size, method), 0.0) + took
                    cpu[(size, method)] = cpu.get((size, method), 0.0) + used
                    frames[(size, method)] = frames.get((size, method), 0) + n
        speed = {key: frames[key] / seconds[key] for key in seconds}
        print(f"Extraction speed, {args.clips} MLR511 clips re-encoded (mp4v) at each size, {os.cpu_count()} cores, "
              f"{args.rounds} rounds\n")
        print("| input | method | frames | seconds | frames/s | vs tutorial loop | cores busy | CPU ms/frame |\n"
              "|---|---|---|---|---|---|---|---|")
        for size, method in seconds:
            key = (size, method)
            ratio = speed[key] / speed[(size, "tutorial loop (1 process)")]
            print(f"| {size} | {method} | {frames[key]} | {seconds[key]:.1f} | {speed[key]:.1f} | {ratio:.2f}x "
                  f"| {cpu[key] / seconds[key]:.2f} | {1000 * cpu[key] / frames[key]:.1f} |")
        for size in clips:
            busy = cpu[(size, "tutorial loop (1 process)")] / seconds[(size, "tutorial loop (1 process)")]
            print(f"\n{size}: the tutorial loop alone keeps {busy:.2f} cores busy, so at its CPU time per frame "
                  f"{os.cpu_count()} cores give at most {os.cpu_count() / busy:.2f}x its speed.")
        for method, _, _ in methods[1:3]:
            ratio = speed[("1080p", method)] / speed[("640p", method)]
            print(f"\n1080p / 640p speed, {method}: {ratio:.2f}")
        err = downscale_error(clips["1080p"][: max(1, args.clips // 3)])
        print("\nDownscaling 1080p to 640 px before inference vs full-resolution inference (x, y in image units):")
        print("| median abs diff | p95 abs diff | frames where both agree a part is present |\n|---|---|---|")
        print(f"| {err['median']:.4f} | {err['p95']:.4f} | {err['agree']:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
