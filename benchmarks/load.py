"""Load on `signrec serve`: many clients at once, latency percentiles, errors and the server's memory over time.

    python benchmarks/load.py MODEL [--landmark-clients 50] [--landmark-seconds 300]
                                    [--video-clients 10] [--video-seconds 120] [--idle-seconds 20] [--json OUT]
    python benchmarks/load.py MODEL --profile 200      # where one landmark request's time and memory go

The server runs as `signrec serve MODEL` in a subprocess on 127.0.0.1 (a free port); the clients are asyncio
tasks over httpx in this process, each sending its next request as soon as the previous one is answered.
Phase 1 posts one real MLR511 clip's landmarks to /v1/predict/landmarks, phase 2 uploads that clip's video to
/v1/predict, then the server idles. The server's RSS is sampled every 2 s throughout: flat under steady load is
the goal (issue 20, point 13). Any answer other than 200 or the documented 429 counts as an error.

--profile N runs N landmark requests in this process, through the app, under cProfile and tracemalloc, and
prints the functions that take the time and the lines that hold the memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = Path(os.environ.get("SIGNREC_DATA_MIRROR") or REPO.parent / "shared" / "data") / \
    "mlr511_arsl" / "videos" / "user08" / "G01" / "R01.mp4"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """Samples a process's RSS every `every` seconds, tagged with the phase running at the time."""

    def __init__(self, pid: int, every: float = 2.0):
        super().__init__(daemon=True)
        self.pid, self.every, self.phase = pid, every, "start"
        self.samples: list[tuple[float, str, float]] = []
        self._halt = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((round(time.monotonic() - self._t0, 1), self.phase, round(rss_mb(self.pid), 1)))
            except OSError:
                return
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def of(self, phase: str) -> list[float]:
        return [mb for _t, p, mb in self.samples if p == phase]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def hammer(url: str, clients: int, seconds: float, request: dict[str, Any]) -> dict[str, Any]:
    """`clients` tasks sending `request` back to back for `seconds`: throughput, latency, answers by status."""
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status = str((await http.post(url, **request)).status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status == "200":
                latencies.append((time.perf_counter() - start) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.monotonic()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.monotonic() - start
    errors = sum(n for s, n in statuses.items() if s not in ("200", "429"))
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": sum(statuses.values()),
            "ok_per_s": round(len(latencies) / elapsed, 2), "p50_ms": round(percentile(latencies, 50), 1),
            "p95_ms": round(percentile(latencies, 95), 1), "p99_ms": round(percentile(latencies, 99), 1),
            "statuses": statuses, "errors": errors}


def landmark_body(video: Path) -> bytes:
    """The JSON of one real clip's landmarks (null for missing), as a client that runs MediaPipe itself sends."""
    from signrec.video.holistic import extract_video

    array, info = extract_video(video)
    frames = [[[None if np.isnan(v) else round(float(v), 5) for v in point] for point in frame] for frame in array]
    return json.dumps({"frames": frames, "fps": info.get("fps")}).encode()


def start_server(model: Path, port: int, log: Any) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "signrec.cli", "serve", str(model), "--port", str(port), "--quiet"]
    server = subprocess.Popen(cmd, stdout=log, stderr=log)
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}; see {log.name}")
        time.sleep(0.5)
    server.kill()
    raise SystemExit("server did not come up in 2 minutes")


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    body = landmark_body(args.video)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w", prefix="signrec-load-", suffix=".log", delete=False) as log:
        server = start_server(args.model, port, log)
        sampler = RssSampler(server.pid)
        sampler.start()
        results: dict[str, Any] = {}
        try:
            time.sleep(4)
            sampler.phase = "landmarks"
            results["landmarks"] = asyncio.run(hammer(
                base + "/v1/predict/landmarks", args.landmark_clients, args.landmark_seconds,
                {"content": body, "headers": {"content-type": "application/json"}}))
            sampler.phase = "videos"
            video = args.video.read_bytes()
            results["videos"] = asyncio.run(hammer(
                base + "/v1/predict", args.video_clients, args.video_seconds,
                {"files": {"file": (args.video.name, video, "video/mp4")}}))
            sampler.phase = "idle"
            time.sleep(args.idle_seconds)
        finally:
            sampler.stop()
            server.terminate()
            server.wait(30)
    rss = {phase: {"start": values[0], "max": max(values), "end": values[-1]}
           for phase in ("start", "landmarks", "videos", "idle") if (values := sampler.of(phase))}
    return {"results": results, "rss_mb": rss, "rss_timeline": sampler.samples, "server_log": log.name,
            "landmark_frames": len(json.loads(body)["frames"]), "cpus": os.cpu_count()}


def table(report: dict[str, Any]) -> str:
    lines = ["| phase | clients | s | requests | ok/s | p50 ms | p95 ms | p99 ms | answers | errors | RSS MB start -> max -> end |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for phase, r in report["results"].items():
        m = report["rss_mb"].get(phase, {})
        lines.append(f"| {phase} | {r['clients']} | {r['seconds']} | {r['requests']} | {r['ok_per_s']} | {r['p50_ms']} "
                     f"| {r['p95_ms']} | {r['p99_ms']} | {r['statuses']} | {r['errors']} "
                     f"| {m.get('start')} -> {m.get('max')} -> {m.get('end')} |")
    idle = report["rss_mb"].get("idle", {})
    lines.append(f"\nserver RSS idle after the load: {idle.get('end')} MB (at start {report['rss_mb']['start']['end']} MB)")
    by_half_minute: dict[int, float] = {}
    for t, _phase, mb in report["rss_timeline"]:
        by_half_minute[int(t // 30) * 30] = mb
    lines.append("RSS every 30 s: " + ", ".join(f"{t}s {mb:.0f}" for t, mb in by_half_minute.items()))
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> None:
    """Landmark requests through the app in this process under cProfile and tracemalloc."""
    import cProfile
    import pstats
    import tracemalloc

    import torch
    from starlette.testclient import TestClient

    from signrec.model.artifact import Classifier
    from signrec.serve.app import create_app

    torch.set_num_threads(1)  # as `signrec serve` runs
    body = landmark_body(args.video)
    with TestClient(create_app(Classifier.load(args.model))) as client:
        def post() -> None:
            response = client.post("/v1/predict/landmarks", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 200, response.text

        for _ in range(5):
            post()
        start = time.perf_counter()
        for _ in range(args.profile):
            post()
        print(f"{args.profile} requests, one at a time: {(time.perf_counter() - start) / args.profile * 1000:.1f} ms "
              f"each ({len(body) / 1e6:.2f} MB of JSON)")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile):
            post()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        tracemalloc.start(10)
        for _ in range(args.profile):
            post()
        snapshot = tracemalloc.take_snapshot()
        print("memory still held after the requests, by line:")
        for stat in snapshot.statistics("lineno")[:10]:
            print(" ", stat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="the clip sent (its landmarks, then itself)")
    parser.add_argument("--landmark-clients", type=int, default=50)
    parser.add_argument("--landmark-seconds", type=float, default=300)
    parser.add_argument("--video-clients", type=int, default=10)
    parser.add_argument("--video-seconds", type=float, default=120)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N requests in-process instead")
    parser.add_argument("--json", type=Path, help="also write the full report (RSS timeline included) here")
    args = parser.parse_args()
    if args.profile:
        profile(args)
        return 0
    report = run_load(args)
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
