"""`signrec serve`: a model behind HTTP and WebSocket, with a live web page at `/`.

Endpoints: `POST /v1/predict` (video upload), `POST /v1/predict/landmarks` (JSON frames),
`WS /v1/stream` (JPEG or landmark frames in, rolling predictions out), `GET /v1/model`, `GET /v1/models`,
`POST /v1/models/{name}/use`, `POST /v1/enroll` (serve/models.py), `GET /healthz`; OpenAPI docs at `/docs`.
MediaPipe and the classifier run in worker threads,
never on the event loop, so one slow video does not stall other clients. Every bad input gets
a 4xx JSON answer `{"detail": "<one sentence>"}`; limits on upload size, duration and frame rate keep one
client from exhausting the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote_plus, urlsplit

import numpy as np
from fastapi import (
    FastAPI,
    File,
    HTTPException,
    Query,
    Request,
    Security,
    UploadFile,
    WebSocket,
)
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signrec import SignrecError, __version__, landmarks
from signrec.landmarks.dataset import VIDEO_EXTENSIONS
from signrec.model import unknown
from signrec.serve.models import ModelShelf, add_routes
from signrec.serve.schemas import LAYOUT_HELP, Error, LandmarkRequest, ModelInfo, Prediction
from signrec.serve.settings import API_KEY_HEADER, ServerSettings
from signrec.serve.stream import _refuse, _run_stream
from signrec.video.holistic import extract_video
from signrec.video.settings import MODEL_FIELDS
from signrec.video.sources import open_source

log = logging.getLogger("signrec.server")

STATIC_DIR = Path(__file__).with_name("static")
PAGE_DIR = Path(__file__).parent / "web" / "page"
SHARED_ASSETS = ("style.css", "draw.js")
"""Files of the on-device page (web/page/) that the server-side page at / uses too: one copy of each."""
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


# --- request and response shapes (they make the OpenAPI docs) -------------------------------------------------


TopK = Annotated[int | None, Query(ge=1, description="how many labels to return (default: the server's top_k)")]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Error} for code in (401, 413, 422, 429)}


# --- helpers ----------------------------------------------------------------------------------------------


def _top(labels: list[str], probs: np.ndarray, k: int) -> list[dict[str, Any]]:
    order = np.argsort(-probs)[:k]
    return [{"label": labels[i], "p": round(float(probs[i]), 4)} for i in order]


def landmarks_from_json(frames: Any, fps: float | None, settings: ServerSettings) -> np.ndarray:
    """JSON frames -> (T, 543, 3) float32, or HTTPException 413/422 (LandmarkError: 422) saying what is wrong and
    what is expected."""
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
    landmarks.check_values(array, "`frames`")
    return landmarks.require_usable(array, "`frames`")


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
    """Hide the API key in uvicorn's log lines: the page must send it in the WebSocket URL (browsers can not set
    headers there), and `/?api_key=KEY` opens the page with it. The name counts however it is spelled: the server
    decodes `api%5Fkey` to `api_key` as any URL parser does, so that spelling is accepted and hidden too."""

    PARAM = re.compile(r"([?&;])([^=&;\s\"]+)=([^&;\s\"]*)")

    @classmethod
    def redact(cls, text: str) -> str:
        return cls.PARAM.sub(lambda m: f"{m[1]}{m[2]}=***" if _names_the_key(m[2]) else m[0], text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def _names_the_key(name: str) -> bool:
    """Whether a query parameter's name, decoded (repeatedly: `api%255Fkey` too), in any case, is `api_key`."""
    for _ in range(4):
        name, before = unquote_plus(name), name
        if name == before:
            break
    return name.lower() == "api_key"


class _KeyGate:
    """Answer 401 to an API request without the key before any of its body is read: FastAPI would parse a whole
    upload (up to --max-upload-mb) before a dependency could check the header."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            given = dict(scope["headers"]).get(API_KEY_HEADER.lower().encode())
            if given is None or not hmac.compare_digest(given, self.key):
                detail = f"missing or wrong API key (send it in the {API_KEY_HEADER} header)"
                await JSONResponse({"detail": detail}, 401, headers={"WWW-Authenticate": "ApiKey"})(scope, receive,
                                                                                                     send)
                return
        await self.app(scope, receive, send)


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a browser page at `origin` may open a stream: same host as the server's (`host`: the Host header),
    or one of --cors-origins ("*": any). No Origin at all is a client other than a browser, and allowed."""
    if origin is None or "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == str(host).lower()


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
    folder, also the on-device page at /app/ (signrec.serve.web), which needs the folder's model.onnx, and
    enrollment of personal models into settings.models_dir (default: `personal/` beside the model folder)."""
    settings = replace(settings, extract=classifier.landmark_settings(settings.extract))
    folder = Path(model_dir) if model_dir is not None else None
    shelf = ModelShelf(classifier, folder, Path(settings.models_dir) if settings.models_dir
                       else folder.resolve().parent / "personal" if folder else None)
    pools: dict[str, ThreadPoolExecutor] = {}
    busy = {"videos": 0, "streams": 0}  # changed only on the event loop: no lock needed

    def video_pool() -> ThreadPoolExecutor:
        """The video workers, made on first use: an app served again after a shutdown (a second lifespan, as test
        clients and some servers run) would otherwise answer every video with 500 from a pool already shut down."""
        if "video" not in pools:
            pools["video"] = ThreadPoolExecutor(settings.workers, thread_name_prefix="signrec-video")
        return pools["video"]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if (pool := pools.pop("video", None)) is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # /docs and /redoc with their scripts served from the package (fastapi-offline): no CDN, works offline
    app = FastAPIOffline(title="signrec", version=__version__, lifespan=lifespan, static_url="/docs-static",
                         description="Sign-language recognition: upload a video or landmarks, or stream a camera. "
                                     f"Landmark layout: {LAYOUT_HELP}")
    # Outermost last: CORS answers preflights and labels every answer, then the key, then the body's size.
    app.add_middleware(_BodyLimit, max_bytes=settings.max_upload_bytes)
    if settings.api_key is not None:
        app.add_middleware(_KeyGate, key=settings.api_key)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"])
    key_doc = [Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]  # for OpenAPI; _KeyGate checks it

    def check_key(given: str | None) -> bool:
        return settings.api_key is None or (
            given is not None and hmac.compare_digest(given.encode(), settings.api_key.encode()))

    @app.exception_handler(SignrecError)
    async def _input_error(_request: Request, exc: SignrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI's and Starlette's only 400: a body not UTF-8, or broken multipart data
            detail = str(exc.detail).rstrip(".")
            return JSONResponse({"detail": f"the request body can not be parsed ({detail}): JSON must be UTF-8 "
                                           "text, a file upload multipart form data"}, 422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_sentence(exc.errors())}, 422)

    @app.exception_handler(WebSocketRequestValidationError)
    async def _invalid_stream(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        await _refuse(websocket, 422, _validation_sentence(exc.errors()))

    def classify(array: np.ndarray, k: int) -> tuple[dict[str, Any], float]:
        """{"label", "unknown_reason", "top"} for one sequence (model.unknown decides unknown), and its time in ms."""
        start = time.perf_counter()
        classifier = shelf.current.classifier
        probs = np.asarray(classifier.predict_proba([array]))[0]
        top = _top(list(classifier.labels), probs, k)
        why = ("no hand in any frame" if unknown.no_hands(array)
               else unknown.reason(top[0]["p"], unknown.threshold(classifier.meta), "unknown" in classifier.meta))
        answer = {"label": unknown.UNKNOWN if why else top[0]["label"], "unknown_reason": why, "top": top}
        return answer, (time.perf_counter() - start) * 1000

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness for load balancers; needs no key."""
        return {"status": "ok", "labels": len(shelf.current.classifier.labels), "busy_videos": busy["videos"],
                "streams": busy["streams"]}

    @app.get("/v1/model", response_model=ModelInfo, dependencies=key_doc, responses=ERRORS,
             tags=["model"])
    async def model_info() -> dict[str, Any]:
        """The model in use: its name, labels, feature spec, the landmark models, training metrics and this
        server's limits."""
        classifier = shelf.current.classifier
        meta = dict(getattr(classifier, "meta", {}) or {})
        made = {name: getattr(settings.extract, name) for name in MODEL_FIELDS}
        return {"name": shelf.current.name, "labels": list(classifier.labels), "spec": classifier.spec.to_dict(),
                "layout": landmarks.LAYOUT, "landmarks": made,
                "metrics": meta.get("metrics"), "meta": meta, "backend": classifier.backend, "limits": settings.public(),
                "version": __version__}

    @app.post("/v1/predict/landmarks", response_model=Prediction, dependencies=key_doc,
              responses=ERRORS, tags=["predict"])
    async def predict_landmarks(body: LandmarkRequest, top_k: TopK = None) -> dict[str, Any]:
        """Top-k signs for one landmark sequence (e.g. from MediaPipe running on the client)."""
        array = await run_in_threadpool(landmarks_from_json, body.frames, body.fps, settings)
        answer, ms = await run_in_threadpool(classify, array, top_k or settings.top_k)
        return {**answer, "frames": len(array), "fps": body.fps, "presence": landmarks.presence(array),
                "timing_ms": {"classify": round(ms, 2)}}

    @app.post("/v1/predict", response_model=Prediction, dependencies=key_doc, responses=ERRORS,
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
                    array, info, ms = await loop.run_in_executor(video_pool(), _extract_upload, path, settings)
                except SignrecError as exc:
                    raise HTTPException(422, str(exc).replace(str(path), name)) from None
        finally:
            busy["videos"] -= 1
        landmarks.require_usable(array, name)
        answer, classify_ms = await run_in_threadpool(classify, array, top_k or settings.top_k)
        return {**answer, "frames": len(array), "fps": info.get("fps"), "presence": landmarks.presence(array),
                "timing_ms": {"extract": round(ms, 1), "classify": round(classify_ms, 2)},
                "warnings": [w.replace(str(path), name) for w in info.get("warnings", [])]}

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket, api_key: str | None = None, fps: float | None = None) -> None:
        """Frames in, rolling predictions out.

        Send binary messages (JPEG/PNG camera frames: the server finds the landmarks and returns them for
        drawing) or text messages (JSON `{"landmarks": 543 x [x, y, z], "t": seconds}`). Each message gets
        one JSON reply: `{"type": "result", "top", "words", "signing", "landmarks"?, "ms"}`, or
        `{"type": "dropped" | "error", "status", "detail"}`. A refused stream is closed at once with code
        4000 + the HTTP status (4401 key, 4403 origin, 4422 parameters, 4429 too many streams) and the reason.
        """
        if not origin_allowed(origin := websocket.headers.get("origin"), websocket.headers.get("host"),
                              settings.cors_origins):
            await _refuse(websocket, 403, f"a page at {origin} may not open a stream here (only this server's own "
                                          "page and --cors-origins)")
            return
        if not check_key(api_key or websocket.headers.get(API_KEY_HEADER)):
            await _refuse(websocket, 401, "missing or wrong API key (query parameter api_key or X-API-Key header)")
            return
        if busy["streams"] >= settings.max_streams:
            await _refuse(websocket, 429, f"{settings.max_streams} streams are already open; retry later")
            return
        busy["streams"] += 1
        try:
            await _run_stream(websocket, shelf.current.classifier, settings, fps)
        finally:
            busy["streams"] -= 1

    add_routes(app, shelf, settings, key_doc, ERRORS)
    if model_dir is not None:
        from signrec.serve.web import routes, vendor

        try:
            routes.mount(app, shelf, check_key)
        except vendor.VendorError as exc:
            log.warning("no on-device page at %s/: %s", routes.PREFIX, exc)
    if STATIC_DIR.is_dir():
        for name in SHARED_ASSETS:
            app.add_api_route(f"/static/{name}", _shared_asset(PAGE_DIR / name), include_in_schema=False)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        async def page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

    return app


def _shared_asset(path: Path) -> Any:
    async def asset() -> FileResponse:
        return FileResponse(path)

    return asset


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
