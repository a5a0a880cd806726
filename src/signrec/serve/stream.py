"""The WebSocket stream: JPEG or landmark frames in, rolling predictions (and landmarks to draw) out.

Each stream holds one MediaPipe Holistic and one StreamRecognizer; frames are processed in a worker thread,
never on the event loop, and a stream over its frame rate or message size is answered, not dropped silently."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
from fastapi import (
    WebSocket,
    WebSocketDisconnect,
)

from signrec import SignrecError, landmarks
from signrec.recognize.continuous import StreamRecognizer
from signrec.serve.schemas import LAYOUT_HELP
from signrec.serve.settings import ServerSettings
from signrec.video.holistic import HolisticExtractor

log = logging.getLogger("signrec.server")


async def _refuse(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse a stream so that every client, browsers too, learns why: accept, then close at once with code
    4000 + the HTTP status and the detail as reason. Browsers see neither the status of a refused handshake nor
    a close before accept (uvicorn answers a bare 403), and uvicorn logs an ERROR after a denial response."""
    await websocket.accept()
    await websocket.close(code=4000 + status, reason=detail.encode()[:123].decode(errors="ignore"))


async def _run_stream(websocket: WebSocket, classifier: Any, settings: ServerSettings, fps: float | None) -> None:
    if fps is not None and not 0 < fps <= settings.max_fps:
        await _refuse(websocket, 422, f"fps must be in (0, {settings.max_fps}], got {fps}")
        return
    await websocket.accept()
    # One thread per stream: MediaPipe's graph and the recognizer are stateful and used in order.
    worker = ThreadPoolExecutor(1, thread_name_prefix="signrec-stream")
    loop = asyncio.get_running_loop()
    holistic: list[HolisticExtractor] = []  # created on the first image: landmark-only clients never need one
    recognizer = StreamRecognizer(classifier, fps or settings.max_fps)
    start = time.monotonic()
    bucket = Bucket(settings.max_fps)

    def on_image(data: bytes, t: float) -> dict[str, Any]:
        if not data:  # OpenCV asserts on an empty buffer
            raise SignrecError("binary message is empty: send a JPEG/PNG image")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise SignrecError("binary message is not a JPEG/PNG image")
        if not holistic:
            holistic.append(HolisticExtractor(settings.extract))
        frame = holistic[0].process(image)
        return {**_state(recognizer.push(frame, t)), "landmarks": _landmarks_for_drawing(frame)}

    def on_landmarks(frame: np.ndarray, t: float) -> dict[str, Any]:
        return _state(recognizer.push(frame, t))

    try:
        await websocket.send_json({"type": "ready", "labels": list(classifier.labels), "limits": settings.public()})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            t = time.monotonic() - start
            data, text = message.get("bytes"), message.get("text")
            size = len(data if data is not None else (text or "").encode())
            if size > settings.max_upload_bytes:
                await websocket.send_json({"type": "error", "status": 413,
                                           "detail": f"message of {size} bytes is over the limit"})
                continue
            # Counted as the message is taken, after the previous one is answered: a backlog queues, in order.
            if data is not None and not bucket.take(t):  # images cost a Holistic run; landmark frames are cheap
                await websocket.send_json({"type": "dropped", "status": 429,
                                           "detail": f"faster than {settings.max_fps} frames/s; frame dropped"})
                continue
            if text is not None and _is_end(text):  # the client is done: classify the sign in progress
                final = _state(await loop.run_in_executor(worker, recognizer.finish))
                await websocket.send_json({**final, "type": "final"})
                continue
            job: Callable[[], dict[str, Any]]
            try:
                if data is not None:
                    job = functools.partial(on_image, data, t)
                else:
                    frame, t = _parse_landmark_message(text or "", t)
                    job = functools.partial(on_landmarks, frame, t)
                started = time.perf_counter()
                reply = await loop.run_in_executor(worker, job)
            except SignrecError as exc:
                await websocket.send_json({"type": "error", "status": 422, "detail": str(exc)})
                continue
            except Exception:  # a bug must not end the stream silently: log it, tell the client, go on
                log.exception("stream frame failed")
                await websocket.send_json({"type": "error", "status": 500, "detail": "internal error (logged)"})
                continue
            reply["ms"] = round((time.perf_counter() - started) * 1000, 1)
            await websocket.send_json(reply)
    except WebSocketDisconnect:
        return
    finally:
        def close() -> None:
            for h in holistic:
                h.close()
        await loop.run_in_executor(worker, close)
        worker.shutdown(wait=False)


def _state(state: dict[str, Any]) -> dict[str, Any]:
    """A StreamRecognizer state as JSON: top as [{label, p}]."""
    return {"type": "result", "top": [{"label": label, "p": round(float(p), 4)} for label, p in state["top"]],
            "words": state["words"], "signing": bool(state["signing"])}


def _is_end(text: str) -> bool:
    """`{"type": "end"}`: the stream's last frame has been sent (checked before any big JSON is parsed)."""
    if len(text) > 100 or '"end"' not in text:
        return False
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("type") == "end"


def _parse_landmark_message(text: str, now: float) -> tuple[np.ndarray, float]:
    try:
        obj = json.loads(text)
    except ValueError:
        raise SignrecError("text message is not JSON; send {\"landmarks\": [[x, y, z], ...], \"t\": seconds}") \
            from None
    t = now
    if isinstance(obj, dict):
        if isinstance(obj.get("t"), int | float) and math.isfinite(obj["t"]):
            t = float(obj["t"])
        obj = obj.get("landmarks")
    try:
        frame = np.array(obj, dtype=np.float32)
    except (ValueError, TypeError):
        frame = None
    if frame is None or frame.shape != (landmarks.N_LANDMARKS, landmarks.N_CHANNELS):
        raise SignrecError("a landmark message is one frame: {\"landmarks\": 543 x [x, y, z], \"t\": seconds}. "
                           + LAYOUT_HELP)
    landmarks.check_values(frame, "landmarks")
    return frame, t


class Bucket:
    """Token bucket: at most `rate` frames a second on average, bursts up to one second's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = rate
        self.last = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _landmarks_for_drawing(frame: np.ndarray) -> dict[str, list | None]:
    """One (543, 3) frame as {part: [[x, y] | null, ...] | null}: what the page needs to draw, rounded."""
    out: dict[str, list | None] = {}
    for name, sl in landmarks.PARTS.items():
        xy = frame[sl, :2]
        ok = ~np.isnan(xy).any(axis=1)
        out[name] = None if not ok.any() else [
            [round(float(x), 4), round(float(y), 4)] if good else None for (x, y), good in zip(xy, ok, strict=True)]
    return out
