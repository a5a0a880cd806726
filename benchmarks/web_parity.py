"""On-device page against the Python pipeline, in headless Chromium whose fake camera plays real held-out clips.

    python benchmarks/web_parity.py MODEL --data mlr511_arsl/labels.csv --signer user08 [--repetition R01]
                                    [--rate 2] [--offline] [--json out.json]

For each clip (one per sign of the model, signed by --signer) it compares:
- top-1: the word the page reports (MediaPipe Holistic wasm + ONNX Runtime Web + the page's continuous
  recogniser) against `signrec predict` on the same video (Python MediaPipe + the model); and the Python model
  on the page's landmarks, which separates landmark differences from segmentation;
- landmarks: the page's against Python MediaPipe's on the same frames (the clip as the camera played it),
  per part: median |difference| of x and y (normalised image coordinates), and how often both found the part;
- time: the page's frame-to-answer time (Holistic + classifier + recogniser, from the camera frame to the
  shown answer), median and p95 over every frame.

The camera plays each clip, with 0.5 s of rest held before and after, at --rate frames a second (slower than
the clip's 15 fps, so that a slow machine still takes every frame); the page's frame clock (?frame_clock=15)
keeps the clip's own timing. --offline stops the web server once the page has loaded and reloads it from the
service worker's copy before the clips play.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import (  # noqa: E402
    chromium,
    read_frames,
    save_screenshot,
    static_server,
    wait_for,
    with_rest,
    write_y4m,
)
from signrec.landmarks import layout as lm  # noqa: E402
from signrec.landmarks.dataset import read_labels  # noqa: E402
from signrec.model.artifact import Classifier  # noqa: E402
from signrec.recognize.continuous import StreamRecognizer  # noqa: E402
from signrec.video.holistic import HolisticExtractor, extract_video  # noqa: E402

CLIP_FPS = 15
REST_S = 0.5


def camera_frames(video: Path) -> list[np.ndarray]:
    """The clip as the fake camera shows it: rest held at both ends, through Y4M's 4:2:0 colour."""
    frames, _fps = read_frames(video)
    return [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)
            for f in with_rest(frames, round(REST_S * CLIP_FPS))]


def python_stream(classifier: Classifier, frames: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    """The server's path on the camera's frames, in order, as one stream: Python MediaPipe + StreamRecognizer
    (what `signrec serve` and `live` run per frame). Returns the landmarks and each frame's time in ms."""
    landmarks, ms = [], []
    recognizer = StreamRecognizer(classifier, CLIP_FPS)
    with HolisticExtractor(classifier.landmark_settings()) as holistic:
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            landmarks.append(holistic.process(frame))
            recognizer.push(landmarks[-1], i / CLIP_FPS)
            ms.append((time.perf_counter() - start) * 1000)
    return np.stack(landmarks), ms


def part_differences(page: np.ndarray, python: np.ndarray) -> dict[str, dict[str, float]]:
    """Per part: median |x, y difference| where both found it, and the share of frames where they agree on it."""
    out = {}
    for name, sl in lm.PARTS.items():
        a, b = page[:, sl, :2], python[:, sl, :2]
        found_a, found_b = ~np.isnan(a).all(axis=(1, 2)), ~np.isnan(b).all(axis=(1, 2))
        both = found_a & found_b
        diff = np.abs(a[both] - b[both])
        out[name] = {"median_abs": float(np.nanmedian(diff)) if both.any() else float("nan"),
                     "agree": float(np.mean(found_a == found_b)), "page_found": float(found_a.mean()),
                     "python_found": float(found_b.mean())}
    return out


def run_page(url: str, camera: Path, n_frames: int, profile: Path, offline_stop=None,
             timeout: float = 600, screenshot: Path | None = None) -> dict[str, Any]:
    """Play one clip to the page; return its words, trace and timing once the clip has played through and
    the sign is closed (or after two passes). With `offline_stop`, the server is stopped and the page
    reloaded from its offline copy first."""
    with chromium(url + "?frame_clock=15&trace=1", camera, profile) as tools:
        def ready() -> bool:
            state = tools.eval("window.signrec ? {ready: signrec.ready, error: signrec.error} : null")
            assert not (state and state["error"]), f"the page failed: {state['error']}"
            return bool(state and state["ready"])

        wait_for(ready, 180, "the page to load MediaPipe and the model")
        if offline_stop is not None:
            wait_for(lambda: tools.eval("navigator.serviceWorker.ready.then(() => !!navigator.serviceWorker.controller)"),
                     60, "the service worker to control the page")
            offline_stop()
            tools.call("Page.reload", ignoreCache=True)
            time.sleep(1)
            wait_for(ready, 180, "the page to load offline")
        tools.eval("document.getElementById('start').click()")
        started = time.monotonic()

        def done() -> dict | None:
            s = tools.eval("({last: signrec.trace.length ? signrec.trace[signrec.trace.length - 1].camera : -1, "
                           "signing: signrec.state ? signrec.state.signing : true, error: signrec.error})")
            return s if (s["last"] >= n_frames and not s["signing"]) or s["last"] >= 2 * n_frames else None

        wait_for(done, timeout, "the clip to play through", poll=1)
        if screenshot is not None:
            save_screenshot(tools, screenshot)
        result = tools.eval("({state: signrec.state, trace: signrec.trace, skipped: signrec.skipped})")
        result["seconds"] = time.monotonic() - started
        return result


def measure_clip(classifier: Classifier, url: str, video: Path, label: str, work: Path, rate: float,
                 offline_stop=None, screenshot: Path | None = None) -> dict[str, Any]:
    frames = camera_frames(video)
    camera = write_y4m(frames, work / "clip.y4m", rate)
    page = run_page(url, camera, len(frames), work / f"profile-{time.monotonic_ns()}", offline_stop,
                    screenshot=screenshot)
    first_pass = [f for f in page["trace"] if f["camera"] < len(frames)]
    page_lm = np.array([[[np.nan if v is None else v for v in f["landmarks"][i:i + 3]]
                         for i in range(0, 543 * 3, 3)] for f in first_pass], dtype=np.float32)
    python_lm, python_ms = python_stream(classifier, frames)
    python_lm = python_lm[[f["camera"] for f in first_pass]]
    video_lm = extract_video(video, classifier.landmark_settings())[0]
    python_top = classifier.labels[int(np.argmax(classifier.predict_proba([video_lm])[0]))]
    on_page_landmarks = classifier.labels[int(np.argmax(classifier.predict_proba([page_lm])[0]))]
    # The page's answer: its first word; if the sign was too unsure to be a word (below the threshold),
    # the top-1 it showed for the sign.
    words = [w for w in page["state"]["words"] if w["start"] * CLIP_FPS < len(frames)]
    top = page["state"]["top"]
    answer = words[0]["label"] if words else (top[0]["label"] if top else None)
    return {"video": str(video), "label": label, "python": python_top, "page": answer,
            "page_words": page["state"]["words"], "python_on_page_landmarks": on_page_landmarks,
            "frames": len(frames), "frames_taken": len(first_pass), "skipped": page["skipped"],
            "ms": [f["ms"] for f in page["trace"][1:]],  # the first frame warms MediaPipe up
            "python_ms": python_ms[1:],
            "landmarks": part_differences(page_lm, python_lm)}


def clips_for(data: Path, labels: list[str], signer: str, repetition: str) -> list[tuple[str, Path]]:
    samples = {s.label: s.path for s in read_labels(data)
               if s.signer == signer and s.extra.get("repetition") == repetition and s.label in labels}
    return [(label, samples[label]) for label in labels if label in samples]


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    ms = sorted(m for r in results for m in r["ms"])
    py = sorted(m for r in results for m in r["python_ms"])
    return {"python_ms_median": statistics.median(py), "python_ms_p95": py[min(len(py) - 1, int(0.95 * len(py)))],"clips": len(results), "page_equals_python": sum(r["page"] == r["python"] for r in results),
            "python_on_page_landmarks_equals_python": sum(r["python_on_page_landmarks"] == r["python"] for r in results),
            "python_correct": sum(r["python"] == r["label"] for r in results),
            "page_correct": sum(r["page"] == r["label"] for r in results),
            "ms_median": statistics.median(ms), "ms_p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
            "frames": len(ms), "skipped": sum(r["skipped"] for r in results)}


def table(results: list[dict[str, Any]]) -> str:
    parts = list(lm.PARTS)
    lines = ["| clip | Python top-1 | page word | Python on page landmarks | frames taken | "
             + " | ".join(f"{p} Δ (found page/py)" for p in parts) + " |",
             "| --- " * (5 + len(parts)) + "|"]
    for r in results:
        cells = [f"{r['landmarks'][p]['median_abs']:.4f} ({r['landmarks'][p]['page_found']:.0%}/"
                 f"{r['landmarks'][p]['python_found']:.0%})" for p in parts]
        lines.append(f"| {r['label']} | {r['python']} | {r['page'] or '—'} | {r['python_on_page_landmarks']} | "
                     f"{r['frames_taken']}/{r['frames']} | " + " | ".join(cells) + " |")
    s = summary(results)
    lines.append("")
    lines.append(f"page top-1 = Python top-1 on {s['page_equals_python']}/{s['clips']} clips "
                 f"(Python model on the page's landmarks: {s['python_on_page_landmarks_equals_python']}/{s['clips']}); "
                 f"correct: Python {s['python_correct']}/{s['clips']}, page {s['page_correct']}/{s['clips']}")
    lines.append(f"page frame to answer: median {s['ms_median']:.0f} ms, p95 {s['ms_p95']:.0f} ms over "
                 f"{s['frames']} frames; camera frames skipped: {s['skipped']}")
    lines.append(f"server path on the same frames (Python MediaPipe + StreamRecognizer, no network): median "
                 f"{s['python_ms_median']:.0f} ms, p95 {s['python_ms_p95']:.0f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="labels.csv of videos with signer and repetition")
    parser.add_argument("--signer", required=True, help="a signer the model never saw")
    parser.add_argument("--repetition", default="R01")
    parser.add_argument("--rate", type=float, default=1.5, help="camera frames a second [%(default)s]")
    parser.add_argument("--web", type=Path, help="an existing `signrec export --format web` folder [export one]")
    parser.add_argument("--offline", action="store_true", help="stop the server after the page loaded, each clip")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    import torch

    from signrec.serve.web.bundle import write_folder

    torch.set_num_threads(1)  # as `signrec serve` runs the classifier beside MediaPipe
    classifier = Classifier.load(args.model)
    clips = clips_for(args.data, classifier.labels, args.signer, args.repetition)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        web = args.web or Path(write_folder(args.model, work / "web")["path"])
        for label, video in clips:
            with static_server(web) as (url, stop):
                results.append(measure_clip(classifier, url, video, label, work, args.rate,
                                            stop if args.offline else None))
            r = results[-1]
            print(f"{label}: python {r['python']}, page {r['page']}, taken {r['frames_taken']}/{r['frames']}",
                  file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary(results), "clips": results}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
