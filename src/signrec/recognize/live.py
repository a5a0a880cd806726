"""Live recognition: camera, video file or stream -> MediaPipe Holistic -> StreamRecognizer -> words.

`LiveRecognizer` is the loop without any window, so it runs (and is tested) on video files;
`signrec live` adds either an OpenCV window (skeleton, top-3, sentence, latency) or JSON lines.
Latency is measured per frame from the moment the frame is decoded to the moment its answer exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from signrec.model.artifact import Classifier
from signrec.recognize.continuous import StreamRecognizer
from signrec.video.holistic import HolisticExtractor
from signrec.video.settings import MODEL_FIELDS, ExtractSettings
from signrec.video.show import View, draw_skeleton
from signrec.video.sources import FrameSource, Latest, open_source


@dataclass
class LiveUpdate:
    """The answer for one frame."""

    index: int
    t: float
    frame: np.ndarray  # BGR, as read
    landmarks: np.ndarray  # (543, 3)
    state: dict[str, Any]  # StreamRecognizer state: top, words, signing
    latency_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"frame": self.index, "t": round(self.t, 3), "top": self.state["top"], "words": self.state["words"],
                "signing": self.state["signing"], "latency_ms": round(self.latency_ms, 2)}


class LiveRecognizer:
    """Iterate over a frame source and get one LiveUpdate per frame; `finish()` flushes the last sign.

    Frames become landmarks with the MediaPipe models the classifier was trained on (`extract` gives the rest
    of the extraction settings). `realtime` paces a file at its frame rate (as a camera would deliver it);
    otherwise files run as fast as possible. Cameras and streams are always real time, and from them the loop
    takes the newest frame: frames it had no time for are dropped (`summary()["dropped_frames"]`). `threads`
    sets torch's (process-wide) thread count until `close()`: the classifier's calls are tiny, and several
    threads fighting MediaPipe for the cores made each call 100x slower on a busy 2-core machine (None leaves
    torch's setting alone).
    """

    def __init__(self, classifier: Classifier, source: FrameSource | str | int | os.PathLike,
                 extract: ExtractSettings | None = None, realtime: bool = False, threads: int | None = 1,
                 **settings: Any):
        self.source = open_source(source) if isinstance(source, str | int | os.PathLike) else source
        self._torch_threads = torch.get_num_threads()  # restored by close()
        if threads:
            torch.set_num_threads(threads)
        self.classifier = classifier
        self.realtime = realtime
        self.recognizer = StreamRecognizer(classifier, self.source.fps, **settings)
        self.extractor = HolisticExtractor(classifier.landmark_settings(extract))
        self.frames: Latest | FrameSource = self.source  # what __iter__ reads: a live source's newest frames only
        self.latencies_ms: list[float] = []
        self.cpu_ms: list[float] = []  # CPU time of this process per frame: latency on an otherwise idle core

    def __iter__(self) -> Iterator[LiveUpdate]:
        start = time.perf_counter()
        self.frames = Latest(iter(self.source)) if self.source.live else self.source
        for index, (t, frame) in enumerate(self.frames):
            if self.realtime:
                ahead = t - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
            begin, cpu = time.perf_counter(), time.process_time()
            points = self.extractor.process(frame)
            state = self.recognizer.push(points, t)
            latency = (time.perf_counter() - begin) * 1000
            self.latencies_ms.append(latency)
            self.cpu_ms.append((time.process_time() - cpu) * 1000)
            yield LiveUpdate(index, t, frame, points, state, latency)

    def finish(self) -> dict[str, Any]:
        """End of the source: classify the sign in progress and return the final state."""
        return self.recognizer.finish()

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms or [np.nan])
        dropped = self.frames.dropped if isinstance(self.frames, Latest) else 0
        made = {name: getattr(self.extractor.settings, name) for name in MODEL_FIELDS}
        return {"frames": len(self.latencies_ms), "dropped_frames": dropped, "words": self.recognizer.state()["words"],
                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2),
                               "p95": round(float(np.percentile(lat, 95)), 2),
                               "max": round(float(np.max(lat)), 2)},
                "landmarks": made}

    def close(self) -> None:
        self.extractor.close()
        self.source.close()
        torch.set_num_threads(self._torch_threads)

    def __enter__(self) -> LiveRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- drawing ----------------------------------------------------------------------------------------------------


def draw(update: LiveUpdate) -> np.ndarray:
    """The frame with skeleton, top-3 bars, the sentence so far and the latency."""
    image = update.frame.copy()
    h, w = image.shape[:2]
    draw_skeleton(image, update.landmarks, View(0.0, 0.0, 1.0, w, h, unit=(float(w), float(h))))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, (label, p) in enumerate(update.state["top"]):
        y = 28 + 26 * i
        cv2.rectangle(image, (10, y - 18), (10 + int(160 * p), y + 4), (80, 180, 80), -1)
        cv2.putText(image, f"{label} {p:.2f}", (14, y), font, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    status = f"{update.latency_ms:.0f} ms" + ("  signing" if update.state["signing"] else "")
    cv2.putText(image, status, (w - 190, 28), font, 0.6, (0, 255, 255), 2, cv2.LINE_AA)
    sentence = " ".join(word["label"] for word in update.state["words"][-8:])
    cv2.rectangle(image, (0, h - 40), (w, h), (0, 0, 0), -1)
    cv2.putText(image, sentence, (10, h - 12), font, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return image


# --- command line -------------------------------------------------------------------------------------------------


