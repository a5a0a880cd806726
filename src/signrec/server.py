"""`signrec serve`: a model behind HTTP and WebSocket, with a live web page at `/`.

Endpoints: `POST /v1/predict` (video upload), `POST /v1/predict/landmarks` (JSON frames),
`WS /v1/stream` (JPEG or landmark frames in, rolling predictions out), `GET /v1/model`,
`GET /healthz`; OpenAPI docs at `/docs`. MediaPipe and the classifier run in worker threads,
never on the event loop, so one slow video does not stall other clients. Every bad input gets
a 4xx JSON answer `{"detail": "<one sentence>"}`; limits on upload size, duration and frame rate keep one
client from exhausting the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import functools
import hmac
import json
import logging
import math
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import (
    Depends,
    FastAPI,
    File,
    HTTPException,
    Query,
    Request,
    Security,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signrec import SignrecError, __version__, cli, landmarks
from signrec.continuous import StreamRecognizer
from signrec.extract import MODEL_FIELDS, ExtractSettings, HolisticExtractor, extract_video
from signrec.sources import VIDEO_EXTENSIONS, open_source

log = logging.getLogger("signrec.server")

STATIC_DIR = Path(__file__).with_name("static")
API_KEY_HEADER = "X-API-Key"
WS_HARD_CAP = 4
"""uvicorn reads WebSocket messages up to this many times --max-upload-mb, so the app can answer 413 to those
over the limit and go on; a larger message ends the stream (1009), since reading it would cost its size in memory."""
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
PORTS: cli.Range = (lambda v: 1 <= v <= 65535, "between 1 and 65535")
LAYOUT_HELP = (
    f"Each frame is {landmarks.N_LANDMARKS} [x, y, z] points in the {landmarks.LAYOUT} layout of MediaPipe "
    "Holistic: pose 0-32, face 33-500, left hand 501-521, right hand 522-542, in normalised image "
    "coordinates; use null for a coordinate that was not detected (never 0)."
)


@dataclass(frozen=True)
class ServerSettings:
    """Limits and access rules of one server. Frozen: a running app's rules do not change under it."""

    api_key: str | None = None
    """Required in the X-API-Key header (or `api_key` query parameter on the WebSocket); None = open."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser page on another site ("*" = any)."""
    max_upload_mb: float = 20.0
    """Largest request body (video or JSON) and WebSocket message."""
    max_duration_s: float = 20.0
    """Longest video or landmark sequence accepted."""
    max_fps: float = 30.0
    """Uploaded videos above this rate are subsampled; a stream's image frames are dropped (429) when the server
    takes them off the connection faster than this (see docs/server.md: a backlog queues, it is not dropped)."""
    top_k: int = 3
    workers: int = 2
    """Videos extracted at the same time (each runs one MediaPipe Holistic)."""
    max_queue: int = 8
    """Video requests waiting or running before new ones get 429."""
    max_streams: int = 4
    """Concurrent WebSocket streams (each holds one Holistic)."""
    extract: ExtractSettings = field(default_factory=ExtractSettings)

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_duration_s", "max_fps"):
            if not getattr(self, name) > 0:
                raise SignrecError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("top_k", "workers", "max_queue", "max_streams"):
            if getattr(self, name) < 1:
                raise SignrecError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def ws_max_bytes(self) -> int:
        return WS_HARD_CAP * self.max_upload_bytes

    @property
    def max_frames(self) -> int:
        return math.ceil(self.max_duration_s * self.max_fps)

    def summary(self) -> str:
        """The limits in words, for the console at startup."""
        return (f"upload {self.max_upload_mb:g} MB, duration {self.max_duration_s:g} s, {self.max_fps:g} fps "
                f"({self.max_frames} frames), {self.workers} videos at once (queue {self.max_queue}), "
                f"max streams {self.max_streams}, top {self.top_k}, API key {'required' if self.api_key else 'not required'}")

    def public(self) -> dict[str, Any]:
        """The limits a client may see (never the key)."""
        return {"max_upload_mb": self.max_upload_mb, "max_duration_s": self.max_duration_s,
                "max_fps": self.max_fps, "max_frames": self.max_frames, "top_k": self.top_k,
                "max_streams": self.max_streams, "api_key_required": self.api_key is not None}


# --- request and response shapes (they make the OpenAPI docs) -------------------------------------------------


class LandmarkRequest(BaseModel):
    frames: list[Any] = Field(description="T frames. " + LAYOUT_HELP, examples=[[[[0.5, 0.4, -0.1]] * 543]])
    fps: float | None = Field(None, gt=0, description="frames per second of the sequence, if known")


class Guess(BaseModel):
    label: str
    p: float = Field(description="probability")


class Prediction(BaseModel):
    top: list[Guess]
    frames: int = Field(description="frames the classifier saw")
    fps: float | None = None
    presence: dict[str, float] = Field(description="fraction of frames in which each body part was detected")
    timing_ms: dict[str, float]
    warnings: list[str] = []


class ModelInfo(BaseModel):
    labels: list[str]
    spec: dict[str, Any]
    layout: str
    landmarks: dict[str, Any]
    """The MediaPipe models to make landmarks with (face on or off, full or lite hands), as for training."""
    metrics: dict[str, Any] | None
    meta: dict[str, Any]
    backend: str
    limits: dict[str, Any]
    version: str


class Error(BaseModel):
    detail: str = Field(description="what is wrong, in one sentence")


TopK = Annotated[int | None, Query(ge=1, description="how many labels to return (default: the server's top_k)")]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Error} for code in (401, 413, 422, 429)}


# --- helpers ----------------------------------------------------------------------------------------------


def _top(labels: list[str], probs: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probs)[:k]
    return [{"label": labels[i], "p": round(float(probs[i]), 4)} for i in order]


def landmarks_from_json(frames: Any, fps: float | None, settings: ServerSettings) -> np.ndarray:
    """JSON frames -> (T, 543, 3) float32, or HTTPException 413/422 saying what is wrong and what is expected."""
    if not isinstance(frames, list) or not frames:
        raise HTTPException(422, "`frames` must be a non-empty list of frames. " + LAYOUT_HELP)
    if fps is not None and fps > settings.max_fps:
        raise HTTPException(422, f"fps {fps} is above this server's limit of {settings.max_fps}; subsample first")
    limit = math.ceil(settings.max_duration_s * (fps or settings.max_fps))
    if len(frames) > limit:
        raise HTTPException(413, f"{len(frames)} frames is more than {settings.max_duration_s} s "
                                 f"at {fps or settings.max_fps} fps (limit {limit} frames)")
    try:
        array = np.array(frames, dtype=np.float32)  # JSON null -> NaN
    except (ValueError, TypeError):
        raise HTTPException(422, "`frames` is not a regular numeric array (ragged lists, strings or objects). "
                                 + LAYOUT_HELP) from None
    shape = tuple(array.shape)
    if shape[1:] != (landmarks.N_LANDMARKS, landmarks.N_CHANNELS):
        raise HTTPException(422, _shape_advice(shape))
    if np.isinf(array).any():
        raise HTTPException(422, "`frames` contains infinite values; use null for a missing coordinate")
    if np.isnan(array).all():
        raise HTTPException(422, "every landmark is missing (all null/NaN): nothing to recognise")
    return array


def _shape_advice(shape: tuple[int, ...]) -> str:
    got = f"got frames of shape {list(shape)}. "
    if shape[1:] == (2, 21, 3):
        hint = ("That is the hands-only layout (frames, 2, 21, 3); put the left hand at points 501-521 and the "
                "right hand at 522-542 with null elsewhere, or convert with `signrec import`. ")
    elif shape[1:] in ((1662,), (1629,)):
        hint = ("That is the flat MP_Data tutorial vector (pose with visibility, face, hands); convert with "
                "`signrec import`. ")
    elif shape[1:] == (landmarks.N_LANDMARKS * landmarks.N_CHANNELS,):
        hint = f"Send each frame as {landmarks.N_LANDMARKS} points of [x, y, z], not one flat list. "
    elif shape == (landmarks.N_LANDMARKS, landmarks.N_CHANNELS):
        hint = "That looks like a single frame: wrap it in a list. "
    else:
        hint = ""
    return f"expected frames of shape [T, {landmarks.N_LANDMARKS}, {landmarks.N_CHANNELS}]; " + got + hint + LAYOUT_HELP


def _validation_sentence(errors: Sequence[Any]) -> str:
    """FastAPI's list of validation errors as one sentence, so that every 4xx `detail` is a string."""
    kinds = {"body": "field", "query": "query parameter", "header": "header", "path": "path parameter"}
    parts = []
    for error in errors:
        where, *name = [str(part) for part in error["loc"]]
        subject = f"{kinds.get(where, where)} `{'.'.join(name)}`" if name else f"the request {where}"
        if error["type"] == "json_invalid":
            parts.append(f"the request body is not valid JSON ({error.get('ctx', {}).get('error', error['msg'])})")
        elif error["type"] == "missing":
            parts.append(f"{subject} is missing")
        else:
            parts.append(f"{subject}: {error['msg'][:1].lower()}{error['msg'][1:]}")
    return "; ".join(parts)


def _image_format(head: bytes) -> str | None:
    """'JPEG' or 'PNG' if an upload starts like that image format: a still frame is not a video of a sign."""
    return next((kind for magic, kind in IMAGE_SIGNATURES.items() if head.startswith(magic)), None)


class RedactKey(logging.Filter):
    """Hide the `api_key` query value in uvicorn's log lines: the page must send it in the WebSocket URL
    (browsers can not set headers there), and `/?api_key=KEY` opens the page with it."""

    PATTERN = re.compile(r"([?&]api_key=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.PATTERN.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def _landmarks_for_drawing(frame: np.ndarray) -> dict[str, list | None]:
    """One (543, 3) frame as {part: [[x, y] | null, ...] | null}: what the page needs to draw, rounded."""
    out: dict[str, list | None] = {}
    for name, sl in landmarks.PARTS.items():
        xy = frame[sl, :2]
        ok = ~np.isnan(xy).any(axis=1)
        out[name] = None if not ok.any() else [
            [round(float(x), 4), round(float(y), 4)] if good else None for (x, y), good in zip(xy, ok, strict=True)]
    return out


class _BodyLimit:
    """Refuse request bodies over the limit with 413, by Content-Length or while they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body is larger than this server's limit of {self.max_bytes / 2**20:.3g} MB"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"detail": detail}, 413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, detail)  # rendered by FastAPI's exception handling
            return message

        await self.app(scope, counted, send)


# --- the app ----------------------------------------------------------------------------------------------


def create_app(classifier: Any, settings: ServerSettings = ServerSettings(),
               model_dir: str | os.PathLike | None = None) -> FastAPI:
    """The FastAPI app serving `classifier` (a signrec.artifact.Classifier) under `settings`; with the model's
    folder, also the on-device page at /app/ (signrec.web), which needs the folder's model.onnx."""
    settings = replace(settings, extract=classifier.landmark_settings(settings.extract))
    video_pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="signrec-video")
    busy = {"videos": 0, "streams": 0}  # changed only on the event loop: no lock needed

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        video_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="signrec", version=__version__, lifespan=lifespan,
                  description="Sign-language recognition: upload a video or landmarks, or stream a camera. "
                              f"Landmark layout: {LAYOUT_HELP}")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"])
    app.add_middleware(_BodyLimit, max_bytes=settings.max_upload_bytes)
    labels = list(classifier.labels)

    def check_key(given: str | None) -> bool:
        return settings.api_key is None or (
            given is not None and hmac.compare_digest(given.encode(), settings.api_key.encode()))

    async def require_key(key: Annotated[str | None, Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]
                          = None) -> None:
        if not check_key(key):
            raise HTTPException(401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
                                headers={"WWW-Authenticate": "ApiKey"})

    @app.exception_handler(SignrecError)
    async def _input_error(_request: Request, exc: SignrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_sentence(exc.errors())}, 422)

    @app.exception_handler(WebSocketRequestValidationError)
    async def _invalid_stream(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        await _refuse(websocket, 422, _validation_sentence(exc.errors()))

    def classify(array: np.ndarray, k: int) -> tuple[list[dict[str, Any]], float]:
        start = time.perf_counter()
        probs = np.asarray(classifier.predict_proba([array]))[0]
        return _top(labels, probs, k), (time.perf_counter() - start) * 1000

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness for load balancers; needs no key."""
        return {"status": "ok", "labels": len(labels), "busy_videos": busy["videos"], "streams": busy["streams"]}

    @app.get("/v1/model", response_model=ModelInfo, dependencies=[Depends(require_key)], responses=ERRORS,
             tags=["model"])
    async def model_info() -> dict[str, Any]:
        """Labels, feature spec, the landmark models, training metrics and this server's limits."""
        meta = dict(getattr(classifier, "meta", {}) or {})
        made = {name: getattr(settings.extract, name) for name in MODEL_FIELDS}
        return {"labels": labels, "spec": classifier.spec.to_dict(), "layout": landmarks.LAYOUT, "landmarks": made,
                "metrics": meta.get("metrics"), "meta": meta, "backend": classifier.backend, "limits": settings.public(),
                "version": __version__}

    @app.post("/v1/predict/landmarks", response_model=Prediction, dependencies=[Depends(require_key)],
              responses=ERRORS, tags=["predict"])
    async def predict_landmarks(body: LandmarkRequest, top_k: TopK = None) -> dict[str, Any]:
        """Top-k signs for one landmark sequence (e.g. from MediaPipe running on the client)."""
        array = await run_in_threadpool(landmarks_from_json, body.frames, body.fps, settings)
        top, ms = await run_in_threadpool(classify, array, top_k or settings.top_k)
        return {"top": top, "frames": len(array), "fps": body.fps, "presence": landmarks.presence(array),
                "timing_ms": {"classify": round(ms, 2)}}

    @app.post("/v1/predict", response_model=Prediction, dependencies=[Depends(require_key)], responses=ERRORS,
              tags=["predict"])
    async def predict_video(file: Annotated[UploadFile, File(description="a video (mp4, webm, mov, avi, ...)")],
                            top_k: TopK = None) -> dict[str, Any]:
        """Top-k signs for one uploaded video of a single sign. Landmarks are extracted on the server."""
        name = Path(file.filename or "upload").name
        if image := _image_format(await file.read(8)):
            raise HTTPException(422, f"{name} is a {image} image, not a video: one sign needs a video of the whole "
                                     "movement (send single camera frames to WS /v1/stream)")
        await file.seek(0)
        if busy["videos"] >= settings.max_queue:
            raise HTTPException(429, f"{busy['videos']} videos are already being processed; retry shortly",
                                headers={"Retry-After": "2"})
        busy["videos"] += 1
        try:
            with tempfile.TemporaryDirectory(prefix="signrec-upload-") as tmp:
                # The decoder picks a demuxer by extension too: keep a video one, so a text file is not "played".
                suffix = Path(name).suffix.lower()
                path = Path(tmp) / ("upload" + (suffix if suffix in VIDEO_EXTENSIONS else ".mp4"))
                with open(path, "wb") as out:
                    while chunk := await file.read(1 << 20):
                        out.write(chunk)
                loop = asyncio.get_running_loop()
                try:
                    array, info, ms = await loop.run_in_executor(video_pool, _extract_upload, path, settings)
                except SignrecError as exc:
                    raise HTTPException(422, str(exc).replace(str(path), name)) from None
        finally:
            busy["videos"] -= 1
        if np.isnan(array).all():
            raise HTTPException(422, f"{name}: no person detected in any of its {len(array)} frames")
        top, classify_ms = await run_in_threadpool(classify, array, top_k or settings.top_k)
        return {"top": top, "frames": len(array), "fps": info.get("fps"), "presence": landmarks.presence(array),
                "timing_ms": {"extract": round(ms, 1), "classify": round(classify_ms, 2)},
                "warnings": [w.replace(str(path), name) for w in info.get("warnings", [])]}

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket, api_key: str | None = None, fps: float | None = None) -> None:
        """Frames in, rolling predictions out.

        Send binary messages (JPEG/PNG camera frames: the server finds the landmarks and returns them for
        drawing) or text messages (JSON `{"landmarks": 543 x [x, y, z], "t": seconds}`). Each message gets
        one JSON reply: `{"type": "result", "top", "words", "signing", "landmarks"?, "ms"}`, or
        `{"type": "dropped" | "error", "status", "detail"}`. A refused stream is closed at once with code
        4000 + the HTTP status (4401 key, 4422 parameters, 4429 too many streams) and the reason.
        """
        if not check_key(api_key or websocket.headers.get(API_KEY_HEADER)):
            await _refuse(websocket, 401, "missing or wrong API key (query parameter api_key or X-API-Key header)")
            return
        if busy["streams"] >= settings.max_streams:
            await _refuse(websocket, 429, f"{settings.max_streams} streams are already open; retry later")
            return
        busy["streams"] += 1
        try:
            await _run_stream(websocket, classifier, settings, fps)
        finally:
            busy["streams"] -= 1

    if model_dir is not None:
        from signrec.web import serve as web
        from signrec.web import vendor

        try:
            web.mount(app, classifier, Path(model_dir), check_key)
        except vendor.VendorError as exc:
            log.warning("no on-device page at %s/: %s", web.PREFIX, exc)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

    return app


def _extract_upload(path: Path, settings: ServerSettings) -> tuple[np.ndarray, dict, float]:
    """Probe the video against the limits, then run Holistic on it (in a worker thread)."""
    with open_source(path) as source:
        fps, count = source.fps, source.frame_count
    if fps and count and count / fps > settings.max_duration_s:
        raise HTTPException(413, f"video is {count / fps:.1f} s long; this server's limit is "
                                 f"{settings.max_duration_s} s")
    step = math.ceil(fps / settings.max_fps) if fps > settings.max_fps else 1
    start = time.perf_counter()
    array, info = extract_video(path, replace(settings.extract, frame_step=step))
    if len(array) > settings.max_frames:  # a file whose header did not give its length
        raise HTTPException(413, f"video has more than {settings.max_frames} frames; "
                                 f"limit {settings.max_duration_s} s")
    return array, info, (time.perf_counter() - start) * 1000


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
    if frame is None or frame.shape != (landmarks.N_LANDMARKS, landmarks.N_CHANNELS) or np.isinf(frame).any():
        raise SignrecError("a landmark message is one frame: {\"landmarks\": 543 x [x, y, z], \"t\": seconds}. "
                           + LAYOUT_HELP)
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


# --- command line ------------------------------------------------------------------------------------------


def check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address that can not be listened on (the port taken, a host not of this machine)
    before uvicorn tries: it would log the error and exit 3. Bound as asyncio's create_server binds for uvicorn:
    every address of `host`, with SO_REUSEADDR, so a port that only has old connections closing is free."""
    try:
        addresses = set(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE))
    except socket.gaierror as exc:
        raise SignrecError(f"--host {host}: no such address ({exc.strerror})") from None
    for family, kind, proto, _name, address in addresses:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine lacks (IPv6), skipped as asyncio skips it
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise SignrecError(f"{host}:{port} is already in use (another server, or another `signrec "
                                       "serve`, listens there); stop it or choose another --port") from None
                raise SignrecError(f"can not listen on {host}:{port}: {exc.strerror}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ServerSettings()
    parser.add_argument("model", help="model folder: RUN/model, made by `signrec train`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all) [%(default)s]")
    parser.add_argument("--port", type=cli.number(int, PORTS), default=8000,
                        help="TCP port to listen on, 1-65535 [%(default)s]")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                        help="run the model with PyTorch or with ONNX Runtime (needs `signrec export`) [%(default)s]")
    parser.add_argument("--api-key", default=os.environ.get("SIGNREC_API_KEY"),
                        help="require this key in the X-API-Key header [$SIGNREC_API_KEY, else none: open to all]")
    parser.add_argument("--cors-origins", nargs="*", default=[], metavar="ORIGIN",
                        help="browser origins allowed to call the API, e.g. https://example.org ('*': any) [none]")
    parser.add_argument("--max-upload-mb", type=cli.number(float, cli.POSITIVE), default=defaults.max_upload_mb,
                        help=f"largest upload or stream message, in MB; larger gets 413 (a stream message over "
                             f"{WS_HARD_CAP} times this ends the stream) [%(default)s]")
    parser.add_argument("--max-duration-s", type=cli.number(float, cli.POSITIVE), default=defaults.max_duration_s,
                        help="longest video or landmark sequence, in seconds; longer gets 413 [%(default)s]")
    parser.add_argument("--max-fps", type=cli.number(float, cli.POSITIVE), default=defaults.max_fps,
                        help="faster videos are subsampled; a stream's camera frames taken faster than this are "
                             "dropped (429) [%(default)s]")
    parser.add_argument("--workers", type=cli.number(int, cli.AT_LEAST_ONE), default=defaults.workers,
                        help="videos processed at once [%(default)s]")
    parser.add_argument("--max-streams", type=cli.number(int, cli.AT_LEAST_ONE), default=defaults.max_streams,
                        help="live WebSocket streams at once [%(default)s]")
    parser.add_argument("--quiet", action="store_true", help="no log line per request (warnings and errors only)")
    parser.epilog = ("Exit status: 0 stopped with Ctrl+C, 2 bad usage, a model that can not be loaded or an address "
                     "that can not be listened on (such as a port already in use).")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(api_key=args.api_key or None, cors_origins=tuple(args.cors_origins),
                          max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration_s,
                          max_fps=args.max_fps, workers=args.workers, max_streams=args.max_streams)


def run(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from signrec.artifact import Classifier

    settings = settings_from_args(args)
    # Requests run side by side in threads beside MediaPipe; each classifier call is tiny, and torch's
    # intra-op threads fighting MediaPipe for the cores make it far slower (see live.LiveRecognizer).
    torch.set_num_threads(1)
    classifier = Classifier.load(args.model, backend=args.backend)
    check_address(args.host, args.port)
    app = create_app(classifier, settings, model_dir=args.model)
    print(f"signrec serve: {len(classifier.labels)} signs from {args.model} ({args.backend}); "
          f"page http://{args.host}:{args.port}/  on-device page http://{args.host}:{args.port}/app/  docs http://{args.host}:{args.port}/docs\n"
          f"limits: {settings.summary()}", flush=True)
    if not settings.api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"signrec serve: warning: listening on {args.host} without --api-key: anyone who can reach this "
              "port can use the model", file=sys.stderr, flush=True)
    for name in ("uvicorn.access", "uvicorn.error"):  # HTTP lines, and WebSocket lines (logged on uvicorn.error)
        logging.getLogger(name).addFilter(RedactKey())
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                access_log=not args.quiet, ws_max_size=settings.ws_max_bytes)
    return 0
