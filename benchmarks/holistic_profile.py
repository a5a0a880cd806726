"""Where a frame's time goes inside MediaPipe Holistic, by model; prints a Markdown table.

MediaPipe's own profiler times every calculator of the graph (`HolisticExtractor(profile_dir=...)`); the
calculators are summed into the models they run and the steps around them. The profiler times by the clock,
so run this on an otherwise idle machine with at least two cores: a calculator's time is then its CPU time.
On one core the parts add up, so their sum is what a frame costs there (live). The landmark set-ups take
turns on the same real frames (the 4 user08 clips of benchmarks/latency.py by default, decoded once up
front), round after round, one Holistic per clip:
  - default: face on, full hand model (what `signrec extract` and the default models use);
  - lite hands: `--hand-model lite`;
  - no face, lite hands: `--no-face --hand-model lite`, the fast live set-up in the README.
"CPU per frame" is the whole process's CPU time (every MediaPipe thread, plus signrec's frame conversion
and reading the landmarks out); "the rest" is that minus the graph's calculators and creating the graph:
mostly MediaPipe's scheduling and packets. With the profiler on, the graph keeps about one core busy instead
of about 1.35, so this is for where the CPU time goes, not for how fast a frame is (benchmarks/latency.py
and extract_speed.py time that).

    .venv/bin/python benchmarks/holistic_profile.py [--video V.mp4 ...] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from signrec.video.holistic import HolisticExtractor
from signrec.video.settings import ExtractSettings
from signrec.video.sources import open_source

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
DEFAULT_VIDEOS = [DATA / "mlr511_arsl" / "videos" / "user08" / g / "R05.mp4" for g in ("G01", "G04", "G07", "G10")]
SETUPS = {"default": ExtractSettings(), "lite hands": ExtractSettings(hand_model="lite"),
          "no face, lite hands": ExtractSettings(face=False, hand_model="lite")}
PARTS = (  # (row, a piece of the calculator's name in MediaPipe's expanded graph), first match wins
    ("pose landmark model", "poselandmarkbyroicpu__inferencecalculator"),
    ("pose detection model (when tracking is lost)", "posedetectioncpu__inferencecalculator"),
    ("hand landmark models, both hands", "handlandmarkcpu__inferencecalculator"),
    ("hand re-crop models, both hands", "handrecropbyroicpu__inferencecalculator"),
    ("face landmark model", "facelandmarkcpu__inferencecalculator"),
    ("face detection model (face re-crop)", "facedetection__inferencecalculator"),
    ("image crops to tensors (all models)", "imagetotensorcalculator"),
)
REST = "rest of the graph (landmark maths, smoothing, tracking)"
START = "creating the graph (one per video), spread over the clip's frames"


def read_frames(video: Path) -> list[np.ndarray]:
    with open_source(video) as source:
        frames = [frame for _t, frame in source]
    if not frames:
        raise SystemExit(f"{video}: no frames could be read")
    return frames


def part_of(calculator: str) -> str:
    name = calculator.lower()
    return next((row for row, piece in PARTS if piece in name), REST)


def profile_clip(settings: ExtractSettings, frames: list[np.ndarray], work: Path) -> tuple[Counter, float]:
    """(ms per part, CPU seconds) of one clip through a new Holistic."""
    from mediapipe.framework.calculator_profile_pb2 import GraphProfile

    cpu_start = time.process_time()
    with HolisticExtractor(settings, profile_dir=work) as holistic:
        created = time.process_time() - cpu_start
        for frame in frames:
            holistic.process(frame)
    cpu = time.process_time() - cpu_start
    profile = GraphProfile.FromString((work / "0.binarypb").read_bytes())
    parts: Counter = Counter()
    for calculator in profile.calculator_profiles:
        parts[part_of(calculator.name)] += calculator.process_runtime.total / 1000  # microseconds -> ms
    parts[START] = created * 1000
    return parts, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", nargs="+", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clips = [read_frames(v) for v in args.video]
    n_frames = sum(len(c) for c in clips) * args.rounds
    parts = {name: Counter() for name in SETUPS}
    cpu = dict.fromkeys(SETUPS, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for turn in range(args.rounds):
            order = list(SETUPS) if turn % 2 == 0 else list(SETUPS)[::-1]
            for name in order:
                for i, frames in enumerate(clips):
                    got, used = profile_clip(SETUPS[name], frames, Path(tmp) / f"{turn}-{name}-{i}")
                    parts[name] += got
                    cpu[name] += used
    per_frame = {name: {row: ms / n_frames for row, ms in parts[name].items()} for name in SETUPS}
    print(f"MediaPipe Holistic by model, {len(args.video)} clips x {args.rounds} rounds = {n_frames} frames per "
          f"set-up, {os.cpu_count()} cores; ms per frame (share of the default's CPU)\n")
    print("| part | " + " | ".join(SETUPS) + " |\n|---|" + "---|" * len(SETUPS))
    default_cpu = cpu["default"] * 1000 / n_frames

    def row(label: str, values: dict[str, float], bold: bool = False) -> None:
        cells = []
        for name in SETUPS:
            ms = values.get(name, 0.0)
            text = f"{ms:.1f} ({ms / default_cpu:.0%})" if name == "default" else f"{ms:.1f}"
            cells.append(f"**{text}**" if bold else text)
        print(f"| {label} | " + " | ".join(cells) + " |")

    for label in [p for p, _ in PARTS] + [REST]:
        row(label, {name: per_frame[name].get(label, 0.0) for name in SETUPS})
    graph = {name: sum(ms for label, ms in per_frame[name].items() if label != START) for name in SETUPS}
    row("graph, all calculators", graph)
    row(START, {name: per_frame[name][START] for name in SETUPS})
    row("the rest (MediaPipe's scheduling and packets, frame conversion, reading landmarks out)",
        {name: cpu[name] * 1000 / n_frames - graph[name] - per_frame[name][START] for name in SETUPS})
    row("CPU per frame, whole process", {name: cpu[name] * 1000 / n_frames for name in SETUPS}, bold=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
