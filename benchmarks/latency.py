"""Latency of the real-time paths, measured side by side in one run; prints a Markdown table.

    python benchmarks/latency.py MODEL [--data LABELS.csv] [--video V.mp4 ...] [--requests 200] [--compare X.onnx]
                                 [--live-model FAST_MODEL ...] [--rounds 2]

1. Classifier: one sequence (batch 1), torch vs ONNX Runtime, both on one thread; median and p95 over about
   --repeats calls each, back to back (warm caches) and each right after another model's call (cold caches).
   --compare adds other exported models (e.g. from an older signrec) to the same rotation on the same inputs.
2. Live: frame-to-answer latency (MediaPipe Holistic + StreamRecognizer, classifier on --backend) over real
   videos, the process pinned to one CPU core; and the StreamRecognizer alone on the same frames. --live-model adds models to the rotation:
   each runs the landmark models it was trained on, so one trained without the face and with lite hands
   (`signrec extract --no-face --hand-model lite`) shows what those cost.
3. Server: `signrec serve MODEL` in a subprocess on 127.0.0.1; POST /v1/predict/landmarks with 1 and 20
   concurrent clients (httpx + asyncio), --requests requests per level: requests/s and latency p50/p95.

Targets (issue 4): classifier <= 1 ms per sequence with onnxruntime; live p95 <= 40 ms per frame on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from signrec.model.artifact import Classifier
from signrec.model.export import check_sequences, export_onnx
from signrec.model.runtime import OnnxNetwork, pad_batch
from signrec.recognize.continuous import StreamRecognizer
from signrec.recognize.live import LiveRecognizer

DATA = Path(os.environ.get("SIGNREC_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
DEFAULT_VIDEOS = [DATA / "mlr511_arsl" / "videos" / "user08" / g / "R05.mp4" for g in ("G01", "G04", "G07", "G10")]


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "n": len(a)}


def one_core() -> set[int]:
    """Pin this process to one CPU (returns the previous set, to restore)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    return before


def bench_classifier(classifier: Classifier, seqs: list[np.ndarray], repeats: int,
                     compare: list[Path] = ()) -> dict[str, dict]:
    """Each backend timed in two conditions: back to back (warm caches, as a server answering a queue or a
    batch job), and right after a call of another backend, whose weights and buffers have pushed this one's
    out of the CPU caches (as in live, where MediaPipe runs between two classifier calls)."""
    torch.set_num_threads(1)
    net = classifier.network()
    with tempfile.TemporaryDirectory() as tmp:
        onnx = OnnxNetwork(export_onnx(classifier, Path(tmp) / "model.onnx", seqs), threads=1)
    inputs = [pad_batch([s]) for s in seqs]

    def run_torch(x: np.ndarray, n: np.ndarray) -> None:
        with torch.inference_mode():
            net(torch.from_numpy(x), torch.from_numpy(n))

    backends = {"torch": run_torch, "onnxruntime": onnx}
    backends.update({f"onnxruntime, {path}": OnnxNetwork(path, threads=1) for path in compare})
    # Warm up for a few seconds: this VM runs the first second of a busy process at up to half speed, and
    # ONNX Runtime plans memory once per input shape.
    deadline = time.perf_counter() + 3
    while time.perf_counter() < deadline:
        for fn in backends.values():
            for x, n in inputs:
                fn(x, n)

    def timed(fn: Callable[[np.ndarray, np.ndarray], Any], x: np.ndarray, n: np.ndarray) -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.process_time()
        fn(x, n)
        return (time.perf_counter() - start) * 1000, (time.process_time() - cpu_start) * 1000

    names = list(backends)
    runs = {(name, cond): [] for name in names for cond in ("warm", "cold")}
    # Rounds in which every backend takes its turn, so that all see the same machine (it has slow spells).
    # Each turn is 8 passes over the inputs back to back (the first call, after another backend, left out),
    # then 8 passes in which each call follows one call of the next backend in the list on another input.
    for _ in range(math.ceil(repeats / (8 * len(inputs)))):
        for k, name in enumerate(names):
            fn, other = backends[name], backends[names[(k + 1) % len(names)]]
            for p in range(8):
                for i, (x, n) in enumerate(inputs):
                    t = timed(fn, x, n)
                    if p or i:
                        runs[name, "warm"].append(t)
            for _ in range(8):
                for i, (x, n) in enumerate(inputs):
                    other(*inputs[(i + 1) % len(inputs)])
                    runs[name, "cold"].append(timed(fn, x, n))
    return {name: {cond: {**percentiles([t for t, _ in runs[name, cond]]),
                          "cpu_p50": float(np.median([c for _, c in runs[name, cond]]))} for cond in ("warm", "cold")}
            for name in names}


def bench_live(classifiers: dict[str, Classifier], videos: list[Path], rounds: int) -> dict[str, dict]:
    """Each model in turn on each video, `rounds` times over: side by side, so they share the machine's noise.
    A model's live loop runs the landmark models it was trained on (face on or off, full or lite hands)."""
    torch.set_num_threads(1)
    total = {name: [] for name in classifiers}
    cpu = {name: [] for name in classifiers}
    recognizer_only = {name: [] for name in classifiers}
    for video in tqdm(videos * rounds, desc="live", unit="video"):
        for name, classifier in classifiers.items():
            with LiveRecognizer(classifier, str(video)) as live:
                points = [(u.t, u.landmarks) for u in live]
                total[name] += live.latencies_ms[1:]  # the first frame also builds the MediaPipe graph
                cpu[name] += live.cpu_ms[1:]
            stream = StreamRecognizer(classifier, live.source.fps)
            for t, p in points:
                start = time.perf_counter()
                stream.push(p, t)
                recognizer_only[name].append((time.perf_counter() - start) * 1000)
    return {name: {"landmarks": classifier.describe()["landmarks"], "frame": percentiles(total[name]),
                   "frame_cpu": percentiles(cpu[name]), "recognizer": percentiles(recognizer_only[name])}
            for name, classifier in classifiers.items()}


def with_onnx(model: Path, copy: Path, seqs: list[np.ndarray]) -> Path:
    """`model` if its folder holds model.onnx, else a copy of the folder with one exported into it."""
    if (model / "model.onnx").is_file():
        return model
    shutil.copytree(model, copy)
    export_onnx(Classifier.load(model), copy / "model.onnx", seqs)
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(url: str, body: dict, concurrency: int, requests: int) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    left = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in left:
            start = time.perf_counter()
            response = await http.post(url, json=body)
            latencies.append((time.perf_counter() - start) * 1000)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await http.post(url, json=body)  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return {"rps": requests / seconds, **percentiles(latencies), "errors": errors}


def bench_server(model: Path, seq: np.ndarray, fps: float, requests: int, backend: str) -> dict[str, dict]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "signrec.cli", "serve", str(model), "--port", str(port), "--backend", backend,
           "--quiet"]
    # the server's output goes to a file, not a pipe: a full pipe would stall it
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=log, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"`{' '.join(cmd)}` exited: {log.read()[-2000:]}")
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not come up within 120 s")
                time.sleep(0.5)
            frames = [[[None if math.isnan(v) else float(v) for v in point] for point in frame] for frame in seq]
            body = {"frames": frames, "fps": fps}
            return {f"{c} client{'s' * (c > 1)}": asyncio.run(_load(base + "/v1/predict/landmarks", body, c, requests))
                    for c in (1, 20)}
        finally:
            server.terminate()
            server.wait(timeout=30)


def table(result: dict) -> str:
    c, live, srv = result["classifier"], result["live"], result["server"]
    rows = ["| measurement | p50 | p95 | other |", "| --- | --- | --- | --- |"]
    conditions = {"warm": "back to back", "cold": "right after another model (cold caches)"}
    for name in c:
        for cond, words in conditions.items():
            r = c[name][cond]
            rows.append(f"| classifier, 1 sequence, {name}, 1 thread, {words} | {r['p50']:.3f} ms | "
                        f"{r['p95']:.3f} ms | CPU time p50 {r['cpu_p50']:.3f} ms, {r['n']} runs |")
    for cond, words in conditions.items():
        speedup = c["torch"][cond]["p50"] / c["onnxruntime"][cond]["p50"]
        rows.append(f"| onnxruntime vs torch (median, {words}) | {speedup:.1f}x faster | | |")
        for name in list(c)[2:]:
            rows.append(f"| onnxruntime vs {name.split(', ', 1)[1]} (median, {words}) | "
                        f"{c[name][cond]['p50'] / c['onnxruntime'][cond]['p50']:.1f}x faster | | |")
    for name, r in live.items():
        made = f"face {'on' if r['landmarks']['face'] else 'off'}, {r['landmarks']['hand_model']} hands"
        rows.append(f"| live frame -> answer (Holistic + recognizer), 1 core, {name} ({made}, {result['backend']}) | "
                    f"{r['frame']['p50']:.1f} ms | {r['frame']['p95']:.1f} ms | {r['frame']['n']} frames |")
        rows.append(f"| the same, CPU time of the process (what an idle core would take) | "
                    f"{r['frame_cpu']['p50']:.1f} ms | {r['frame_cpu']['p95']:.1f} ms | {r['frame_cpu']['n']} frames |")
        rows.append(f"| recognizer alone (segmentation + classifier, {result['backend']}), 1 core, {name} | "
                    f"{r['recognizer']['p50']:.2f} ms | "
                    f"{r['recognizer']['p95']:.2f} ms | {r['recognizer']['n']} frames |")
    for name, r in srv.items():
        rows.append(f"| server POST /v1/predict/landmarks, {name} ({result['backend']}) | {r['p50']:.1f} ms | "
                    f"{r['p95']:.1f} ms | {r['rps']:.0f} requests/s, {r['n']} requests, {r['errors']} errors |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a trained model folder")
    parser.add_argument("--data", nargs="+", default=[],
                        help="landmark .npy / videos / labels.csv for the classifier (default: the training data)")
    parser.add_argument("--video", nargs="+", type=Path, default=DEFAULT_VIDEOS, help="videos for the live part")
    parser.add_argument("--live-model", nargs="+", type=Path, default=[], metavar="MODEL",
                        help="more models for the live part, in turn with MODEL on each video (e.g. one trained on "
                             "landmarks made without the face and with lite hands)")
    parser.add_argument("--rounds", type=int, default=2, help="times over the videos in the live part [%(default)s]")
    parser.add_argument("--repeats", type=int, default=500, help="classifier calls per backend [%(default)s]")
    parser.add_argument("--requests", type=int, default=200, help="server requests per level [%(default)s]")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="onnxruntime",
                        help="the classifier backend of the live loop and the server [%(default)s]")
    parser.add_argument("--compare", nargs="+", type=Path, default=[], metavar="X.onnx",
                        help="other exported models to time beside this one on the same sequences")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    classifier = Classifier.load(args.model)
    seqs = check_sequences(classifier, args.data, n=16)
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"MODEL": args.model, **{str(m): m for m in args.live_model}}
        if args.backend == "onnxruntime":
            folders = {name: with_onnx(path, Path(tmp) / str(i), seqs) for i, (name, path) in enumerate(folders.items())}
        live = {name: Classifier.load(path, backend=args.backend) for name, path in folders.items()}
        before = one_core()
        try:
            result = {"classifier": bench_classifier(classifier, seqs, args.repeats, args.compare),
                      "live": bench_live(live, args.video, args.rounds)}
        finally:
            os.sched_setaffinity(0, before)
        result["server"] = bench_server(folders["MODEL"], seqs[0], 15.0, args.requests, args.backend)
    result.update(backend=args.backend, frames_per_sequence=sorted({len(s) for s in seqs}), cpus=len(before),
                  command=" ".join(sys.argv))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
