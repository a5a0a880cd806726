"""`signrec serve`: REST, WebSocket and limits, on a tiny real model and real MLR511 clips (held-out signer)."""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from signrec.cli import build_parser, main
from signrec.commands.serve import settings_from_args
from signrec.landmarks.dataset import read_labels
from signrec.model.artifact import Classifier
from signrec.serve.app import STATIC_DIR, RedactKey, create_app
from signrec.serve.settings import ServerSettings
from signrec.serve.web import bundle

HELD_OUT = "user07"  # the tiny model's test signer: never seen in training or early stopping


@pytest.fixture(scope="module")
def classifier(mlr511_tiny_model: Path) -> Classifier:
    return Classifier.load(mlr511_tiny_model)


@pytest.fixture(scope="module")
def client(classifier: Classifier) -> TestClient:
    with TestClient(create_app(classifier, ServerSettings(max_fps=30))) as c:
        yield c


@pytest.fixture(scope="module")
def held_out(mlr511_tiny_landmarks: Path) -> list[tuple[str, np.ndarray]]:
    """(label, landmarks) of the held-out signer's clips."""
    return [(s.label, np.load(s.path)) for s in read_labels(mlr511_tiny_landmarks) if s.signer == HELD_OUT]


def as_json(array: np.ndarray) -> list:
    """Landmarks as JSON lists, NaN -> null, as a client would send them."""
    return [[[None if math.isnan(v) else v for v in point] for point in frame] for frame in array.tolist()]


def clip(shared_data: Path, label: str, signer: str = HELD_OUT, repetition: str = "R01") -> Path:
    for s in read_labels(shared_data / "mlr511_arsl" / "labels.csv"):
        if (s.label, s.signer, s.extra["repetition"]) == (label, signer, repetition):
            return s.path
    raise AssertionError(f"no clip {label} {signer} {repetition}")


def test_health_model_docs_and_page(client: TestClient, classifier: Classifier) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["labels"] == classifier.labels == ["Eat", "Hi", "Sleep"]
    assert info["layout"] == "holistic-543-xyz" and info["spec"] == classifier.spec.to_dict()
    assert info["landmarks"] == {"face": True, "hand_model": "full"}
    assert info["metrics"]["test"]["n"] == 9 and info["limits"]["api_key_required"] is False
    openapi = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict/landmarks", "/v1/model", "/healthz"} <= set(openapi["paths"])
    assert openapi["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in openapi["components"]["schemas"]  # one error shape, 422 included
    for docs in ("/docs", "/redoc"):  # served with their scripts and styles, nothing from another host
        html = client.get(docs).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(url.startswith("/docs-static/") for url in assets), (docs, assets)
        assert "http://" not in html and "https://" not in html, html
        assert all(client.get(url).status_code == 200 for url in assets)
    page = client.get("/")
    assert page.status_code == 200 and "/v1/stream" in client.get("/static/app.js").text
    assert 'id="top"' in page.text
    for name in ("style.css", "draw.js"):  # one copy each, the on-device page's, served to both pages
        shared = client.get(f"/static/{name}")
        assert shared.status_code == 200 and shared.content == (bundle.PAGE_DIR / name).read_bytes()
        assert not (STATIC_DIR / name).exists()
    assert client.get("/static/draw.js").headers["content-type"].startswith("text/javascript")


def test_predict_landmarks_held_out_signer(client: TestClient, held_out: list[tuple[str, np.ndarray]]) -> None:
    right = 0
    for label, array in held_out:
        r = client.post("/v1/predict/landmarks?top_k=2", json={"frames": as_json(array), "fps": 15})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["top"]) == 2 and body["frames"] == len(array) and body["presence"]["pose"] > 0.9
        right += body["top"][0]["label"] == label
    assert right >= 7, f"{right}/9 held-out clips right"


def test_predict_video_upload(client: TestClient, shared_data: Path) -> None:
    path = clip(shared_data, "Sleep")
    with open(path, "rb") as fh:
        r = client.post("/v1/predict", files={"file": (path.name, fh, "video/mp4")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["top"][0]["label"] == "Sleep" and body["fps"] == 15.0
    assert body["frames"] > 20 and body["timing_ms"]["extract"] > 0


BAD_FRAMES = [
    ({"frames": []}, "non-empty list"),
    ({"frames": np.zeros((4, 2, 21, 3)).tolist()}, "hands-only layout"),
    ({"frames": np.zeros((4, 1662)).tolist()}, "MP_Data"),
    ({"frames": np.zeros((543, 3)).tolist()}, "single frame"),
    ({"frames": [[[None] * 3] * 543] * 4}, "`frames`: no usable frames: no body part was detected in any of its 4"),
    ({"frames": [[[0.5, 0.5, 0.0]] * 542 + [[1e30, 0.5, 0.0]]] * 2}, "`frames`: the value 1e+30 at frame 0, point 542"),
    ({"frames": [[[0.1, 0.2]], [[0.3]]]}, "not a regular numeric array"),
    ({"frames": [[["a", "b", "c"]] * 543]}, "not a regular numeric array"),
    ({"frames": [[[0.5, 0.5, 0.0]] * 543] * 2, "fps": 120}, "above this server's limit"),
    ({"frames": "0.5"}, "list"),
    ({"landmarks": []}, "frames"),
]


@pytest.mark.parametrize(("body", "says"), BAD_FRAMES, ids=[says for _b, says in BAD_FRAMES])
def test_bad_landmark_json_is_a_clear_422(client: TestClient, body: dict, says: str) -> None:
    r = client.post("/v1/predict/landmarks", json=body)
    assert r.status_code == 422
    assert says in r.json()["detail"]


def test_bad_requests_get_4xx_and_the_server_keeps_answering(client: TestClient, shared_data: Path,
                                                             held_out: list[tuple[str, np.ndarray]]) -> None:
    video = clip(shared_data, "Hi").read_bytes()
    uploads = {
        "empty.mp4": (b"", "empty file"),
        "notes.txt": (b"hello, not a video\n" * 50, "video"),  # "can not open as a video" or
        "cut.mp4": (video[:3000], "video"),  # "no decodable video frames", as the decoder finds
        "noise.webm": (np.random.default_rng(0).bytes(5000), "video"),
    }
    for name, (data, says) in uploads.items():
        r = client.post("/v1/predict", files={"file": (name, data, "video/mp4")})
        assert r.status_code == 422 and says in r.json()["detail"] and name in r.json()["detail"], (name, r.text)
    ok, frame = cv2.VideoCapture(str(clip(shared_data, "Hi"))).read()
    for ext in (".jpg", ".png"):  # a still frame is refused before any decoding, whatever its name says
        r = client.post("/v1/predict", files={"file": ("sign.mp4", cv2.imencode(ext, frame)[1].tobytes(), "video/mp4")})
        assert r.status_code == 422 and "image, not a video" in r.json()["detail"] and "/v1/stream" in r.json()["detail"]
    r = client.post("/v1/predict", files={"file": ("part.mp4", video[: len(video) // 3], "video/mp4")})
    assert r.status_code == 200 and "truncated" in r.json()["warnings"][0]  # what could be decoded, and a warning
    infinite = json.dumps({"frames": [[[float("inf")] * 3] * 543]}).encode()  # Python's JSON allows Infinity
    frames = {"frames": as_json(held_out[0][1])}
    for request, says in (  # FastAPI's own validation: one sentence too, like every other 4xx
        (client.build_request("POST", "/v1/predict", data={"video": "x"}), "field `file` is missing"),
        (client.build_request("POST", "/v1/predict/landmarks", content=b"{nope",
                              headers={"content-type": "application/json"}), "not valid JSON"),
        (client.build_request("POST", "/v1/predict/landmarks", content=infinite,
                              headers={"content-type": "application/json"}), "infinite"),
        (client.build_request("POST", "/v1/predict/landmarks?top_k=0", json=frames),
         "query parameter `top_k`: input should be greater than or equal to 1"),
    ):
        r = client.send(request)
        assert r.status_code == 422 and says in r.json()["detail"], r.text
    assert client.get("/healthz").json() == {"status": "ok", "labels": 3, "busy_videos": 0, "streams": 0}
    label, array = held_out[0]
    assert client.post("/v1/predict/landmarks", json={"frames": as_json(array)}).status_code == 200


def test_uploads_that_name_local_files_are_refused_alike(client: TestClient, shared_data: Path) -> None:
    """An HLS playlist or concat list uploaded as a video would make FFmpeg read the server's files: refused by its
    bytes, with the same answer whether the file it names exists or not, so it tells nothing about the disk."""
    real, missing = clip(shared_data, "Hi"), shared_data / "mlr511_arsl" / "videos" / "nobody" / "R01.mp4"
    for text, says in (("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n", "an HLS playlist"),
                       ("ffconcat version 1.0\nfile {}\n", "an FFmpeg concat list")):
        answers = []
        for target in (real, missing):
            r = client.post("/v1/predict", files={"file": ("x.mp4", text.format(target).encode(), "video/mp4")})
            answers.append((r.status_code, r.json()))
        assert answers[0] == answers[1] == (422, {"detail": f"x.mp4: {says}, not a video container (signrec reads "
                                                            "MP4/MOV/M4V/3GP, WebM/MKV, AVI, MPEG-PS/TS, FLV or WMV "
                                                            "files)"}), answers
    with open(real, "rb") as fh:  # a name FFmpeg would read as a pattern means nothing: the upload is what counts
        r = client.post("/v1/predict", files={"file": ("sign%d.mp4", fh, "video/mp4")})
    assert r.status_code == 200 and r.json()["top"][0]["label"] == "Hi", r.text


def test_size_duration_and_rate_limits(classifier: Classifier, shared_data: Path,
                                       held_out: list[tuple[str, np.ndarray]]) -> None:
    with TestClient(create_app(classifier, ServerSettings(max_upload_mb=0.05))) as c:
        path = clip(shared_data, "Hi")  # ~200 KB, 3 s
        r = c.post("/v1/predict", files={"file": (path.name, path.read_bytes(), "video/mp4")})
        assert r.status_code == 413 and "0.05 MB" in r.json()["detail"]
        chunks = (b"x" * 10_000 for _ in range(10))  # no Content-Length: counted while it streams in
        assert c.post("/v1/predict/landmarks", content=chunks, headers={"content-type": "application/json"}
                      ).status_code == 413
    with TestClient(create_app(classifier, ServerSettings(max_duration_s=1.0, max_fps=15))) as c:
        r = c.post("/v1/predict", files={"file": (path.name, path.read_bytes(), "video/mp4")})
        assert r.status_code == 413 and "limit is 1.0 s" in r.json()["detail"]
        frame = [[0.5, 0.5, 0.0]] * 543
        assert c.post("/v1/predict/landmarks", json={"frames": [frame] * 16, "fps": 15}).status_code == 413
        assert c.post("/v1/predict/landmarks", json={"frames": [frame] * 15, "fps": 15}).status_code == 200
    with TestClient(create_app(classifier, ServerSettings(max_fps=2))) as c, c.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        kinds = []
        for _ in range(6):  # a burst of image messages (undecodable, so they cost nothing but the rate check)
            ws.send_bytes(b"\xff\xd8 burst")
            kinds.append(ws.receive_json()["status"])
        assert kinds == [422, 422, 429, 429, 429, 429]  # one second's worth (2) is let through, then dropped
        time.sleep(0.6)  # the bucket refills at 2 frames/s
        ok, frame = cv2.VideoCapture(str(path)).read()
        ws.send_bytes(cv2.imencode(".jpg", frame)[1].tobytes())
        assert ws.receive_json()["type"] == "result"


def test_busy_server_answers_429_and_stays_responsive(classifier: Classifier, shared_data: Path) -> None:
    """MediaPipe runs off the event loop: while a video is processed, health checks answer at once, and a
    request over the queue limit gets 429 instead of waiting."""
    from concurrent.futures import ThreadPoolExecutor

    video = clip(shared_data, "Eat")
    with TestClient(create_app(classifier, ServerSettings(workers=1, max_queue=1))) as c, ThreadPoolExecutor(1) as pool:
        first = pool.submit(c.post, "/v1/predict", files={"file": (video.name, video.read_bytes(), "video/mp4")})
        while c.get("/healthz").json()["busy_videos"] == 0:
            assert not first.done(), first.result().text
            time.sleep(0.01)
        start = time.perf_counter()
        assert c.get("/healthz").status_code == 200
        assert time.perf_counter() - start < 1.5  # the video takes seconds
        busy = c.post("/v1/predict", files={"file": (video.name, video.read_bytes(), "video/mp4")})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "2"
        assert first.result(timeout=120).status_code == 200


def test_api_key_and_cors(classifier: Classifier, held_out: list[tuple[str, np.ndarray]]) -> None:
    settings = ServerSettings(api_key="s3cret", cors_origins=("https://example.org",))
    with TestClient(create_app(classifier, settings)) as c:
        assert c.get("/healthz").status_code == 200  # liveness stays open
        assert c.get("/v1/model").status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "wrong"}).status_code == 401
        body = {"frames": as_json(held_out[0][1])}
        assert c.post("/v1/predict/landmarks", json=body).status_code == 401
        assert c.post("/v1/predict/landmarks", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        for query, code, says in (("", 4401, "API key"), ("?api_key=s3cret&fps=99", 4422, "fps must be in"),
                                  ("?api_key=s3cret&fps=abc", 4422, "query parameter `fps`")):
            with c.websocket_connect("/v1/stream" + query) as ws, pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == code and says in closed.value.reason, closed.value
        for query in ("?api_key=s3cret", "?api%5Fkey=s3cret", "?api%5fkey=s3cret"):  # a URL's name, decoded
            with c.websocket_connect("/v1/stream" + query) as ws:
                assert ws.receive_json()["type"] == "ready"
        for origin, allowed in (("https://example.org", True), ("http://testserver", True),  # --cors-origins, same
                                ("https://evil.example", False), ("http://testserver.evil.example", False),
                                ("null", False)):
            with c.websocket_connect("/v1/stream?api_key=s3cret", headers={"origin": origin}) as ws:
                if allowed:
                    assert ws.receive_json()["type"] == "ready"
                else:
                    with pytest.raises(WebSocketDisconnect) as closed:
                        ws.receive_json()
                    assert closed.value.code == 4403 and f"a page at {origin} may not open" in closed.value.reason
        allowed = c.options("/v1/model", headers={"Origin": "https://example.org",
                                                  "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "X-API-Key"})
        assert allowed.headers["access-control-allow-origin"] == "https://example.org"
        other = c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("query", ["?api_key=K", "?fps=15&api%5Fkey=K", "?API_KEY=K&x=1", "?api%255fkey=K",
                                   "?a=1;api_key=K", "?api+key=1&api_key=K&api_key=K"])
def test_the_key_is_kept_out_of_the_log_however_it_is_spelled(query: str) -> None:
    line = RedactKey.redact(f'127.0.0.1:5000 - "WebSocket /v1/stream{query}" [accepted]')
    assert "=K" not in line and "=***" in line, line


def test_stream_landmark_frames_gives_words(client: TestClient, held_out: list[tuple[str, np.ndarray]]) -> None:
    """Three held-out signs in a row, sent as landmark frames at 15 fps -> three words, in order."""
    picks = [next(a for lab, a in held_out if lab == want) for want in ("Hi", "Sleep", "Eat")]
    with client.websocket_connect("/v1/stream?fps=15") as ws:
        assert ws.receive_json()["labels"] == ["Eat", "Hi", "Sleep"]
        t = 0.0
        for array in picks:
            for frame in array:
                ws.send_text(json.dumps({"landmarks": as_json(frame[None])[0], "t": t}))
                reply = ws.receive_json()
                assert reply["type"] == "result", reply
                t += 1 / 15
        assert [w["label"] for w in reply["words"]] == ["Hi", "Sleep", "Eat"]
        assert all(0 <= w["start"] < w["end"] <= t for w in reply["words"])


def test_stream_end_classifies_the_sign_in_progress(client: TestClient,
                                                    held_out: list[tuple[str, np.ndarray]]) -> None:
    """Stopped just before the hands come down, {"type": "end"} gives the word that lowering them gives."""
    frames = np.concatenate([next(a for lab, a in held_out if lab == want) for want in ("Hi", "Sleep", "Eat")])

    def send(ws, frames) -> list[dict]:
        assert ws.receive_json()["type"] == "ready"
        replies = []
        for i, frame in enumerate(frames):
            ws.send_text(json.dumps({"landmarks": as_json(frame[None])[0], "t": i / 15}))
            replies.append(ws.receive_json())
        return replies

    with client.websocket_connect("/v1/stream?fps=15") as ws:
        whole = send(ws, frames)
    closed_at = next(i for i, r in enumerate(whole) if len(r["words"]) == 3)  # the last sign was cut here
    with client.websocket_connect("/v1/stream?fps=15") as ws:
        replies = send(ws, frames[:closed_at - 1])
        assert replies[-1]["signing"] and len(replies[-1]["words"]) == 2
        ws.send_text(json.dumps({"type": "end"}))
        final = ws.receive_json()
    assert final["type"] == "final" and not final["signing"], final
    assert [w["label"] for w in final["words"]] == [w["label"] for w in whole[closed_at]["words"]], final


def test_stream_jpeg_frames_and_bad_messages(client: TestClient, shared_data: Path) -> None:
    cap = cv2.VideoCapture(str(clip(shared_data, "Hi")))
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        huge = json.dumps({"landmarks": [[0.5, 0.5, 0.0]] * 542 + [[0.5, 1e30, 0.0]], "t": 0})
        for bad, says in ((b"\xff\xd8 not really a jpeg", "not a JPEG"), ("{]", "not JSON"), (b"", "message is empty"),
                          (huge, "landmarks: the value 1e+30 at point 542"),
                          (json.dumps({"landmarks": [[0, 0, 0]] * 21}), "543"), ("[1, 2, 3]", "543")):
            (ws.send_bytes if isinstance(bad, bytes) else ws.send_text)(bad)
            reply = ws.receive_json()
            assert reply["type"] == "error" and reply["status"] == 422 and says in reply["detail"], reply
        hands = 0
        for _ in range(20):
            ok, frame = cap.read()
            assert ok
            ws.send_bytes(cv2.imencode(".jpg", cv2.resize(frame, (480, 270)))[1].tobytes())
            reply = json.loads(ws.receive_text(), parse_constant=lambda c: pytest.fail(f"{c} in a reply"))
            assert reply["type"] == "result", reply
            parts = reply["landmarks"]
            assert len(parts["pose"]) == 33 and len(parts["face"]) == 468
            assert all(0 <= c <= 1.2 for p in parts["pose"][:25] if p for c in p)
            hands += parts["right_hand"] is not None or parts["left_hand"] is not None
        assert hands >= 5
    assert client.get("/healthz").json()["streams"] == 0


def test_stream_limit(classifier: Classifier) -> None:
    with TestClient(create_app(classifier, ServerSettings(max_streams=1))) as c, c.websocket_connect("/v1/stream"):
        with c.websocket_connect("/v1/stream") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4429 and "1 streams are already open" in closed.value.reason


def test_served_by_uvicorn(mlr511_tiny_model: Path, held_out: list[tuple[str, np.ndarray]], tmp_path: Path) -> None:
    """`signrec serve --api-key s3cret --max-upload-mb 1` as a user runs it: the key stays out of the log,
    refused streams say why without an ERROR, and a stream message over the limit gets 413 up to the hard cap."""
    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    log, key_file = tmp_path / "server.log", tmp_path / "key.txt"
    key_file.write_text("s3cret\n")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "serve", str(mlr511_tiny_model), "--port",
                                 str(port), "--api-key-file", str(key_file), "--max-upload-mb", "1",
                                 "--max-streams", "1"], stdout=out, stderr=subprocess.STDOUT)
    url, stream = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/stream"

    def refused(query: str) -> tuple[int, str]:
        with connect(stream + query) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        return closed.value.rcvd.code, closed.value.rcvd.reason

    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.25)
        assert b"s3cret" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # not in `ps`
        assert httpx.get(url + "/?api_key=s3cret").status_code == 200  # the page, opened with the key
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # 900 KB announced, 1 KB sent
            raw.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                        b"Content-Length: 900000\r\n\r\n" + b"x" * 1000)
            assert raw.recv(100).startswith(b"HTTP/1.1 401 "), "the server waited for the body"
        with connect(stream + "?api%5Fkey=s3cret") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        code, reason = refused("?api_key=s3cre7")
        assert code == 4401 and "API key" in reason
        assert refused("?api_key=s3cret&fps=99")[0] == refused("?api_key=s3cret&fps=abc")[0] == 4422
        frame = json.dumps({"landmarks": as_json(held_out[0][1][:1])[0], "t": 0.0})
        with connect(stream + "?api_key=s3cret") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            assert refused("?api_key=s3cret")[0] == 4429
            ws.send(b"\xff\xd8" + bytes(3 * 2**20))  # over the limit, under the hard cap (4 x)
            reply = json.loads(ws.recv(timeout=10))
            assert reply["type"] == "error" and reply["status"] == 413, reply
            ws.send(frame)
            assert json.loads(ws.recv(timeout=30))["type"] == "result"  # the stream goes on
            with pytest.raises(ConnectionClosed) as closed:
                ws.send(bytes(4 * 2**20 + 1))
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1009
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    text = log.read_text(errors="replace")
    assert "s3cre" not in text and "api_key=***" in text, text
    assert "ERROR" not in text and "Traceback" not in text, text
    assert "limits: upload 1 MB, duration 20 s, 30 fps (600 frames), 2 videos at once (queue 8), max streams 1, " \
           "top 3, API key required" in text, text


def test_cli_serve_errors(mlr511_tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a signrec model folder" in capsys.readouterr().err
    for option, value in (("--port", "0"), ("--port", "99999"), ("--port", "http"), ("--max-fps", "0")):
        with pytest.raises(SystemExit) as refused:
            main(["serve", str(mlr511_tiny_model), option, value])
        assert refused.value.code == 2 and f"argument {option}" in capsys.readouterr().err

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the server started on a port in use")

    monkeypatch.setattr("uvicorn.run", started)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", str(mlr511_tiny_model), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port} is already in use" in capsys.readouterr().err


def test_the_api_key_from_the_environment_or_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def key(*options: str) -> str | None:
        return settings_from_args(build_parser("serve").parse_args(["serve", "MODEL", *options])).api_key

    monkeypatch.delenv("SIGNREC_API_KEY", raising=False)
    assert key() is None and key("--api-key", "k1") == "k1"
    (tmp_path / "key").write_text("  k2\n")
    monkeypatch.setenv("SIGNREC_API_KEY", "k3")
    assert key() == "k3" and key("--api-key-file", str(tmp_path / "key")) == "k2" and key("--api-key", "k1") == "k1"
    (tmp_path / "two").write_text("k2\nk4\n")
    (tmp_path / "empty").write_text("\n")
    for name, says in (("missing", "no such API key file"), ("two", "found more lines"), ("empty", "found nothing")):
        assert main(["serve", "MODEL", "--api-key-file", str(tmp_path / name)]) == 2
        assert f"{tmp_path / name}: " in (err := capsys.readouterr().err) and says in err, err
    with pytest.raises(SystemExit) as refused:
        main(["serve", "MODEL", "--api-key", "k1", "--api-key-file", str(tmp_path / "key")])
    assert refused.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_onnxruntime_backend_gives_the_same_answers(mlr511_tiny_model: Path, classifier: Classifier, tmp_path: Path,
                                                    held_out: list[tuple[str, np.ndarray]]) -> None:
    import shutil

    from signrec.model.export import export_onnx

    model = shutil.copytree(mlr511_tiny_model, tmp_path / "model")
    export_onnx(classifier, model / "model.onnx", sequences=[a for _label, a in held_out[:2]])
    with TestClient(create_app(Classifier.load(model, backend="onnxruntime"))) as c:
        assert c.get("/v1/model").json()["backend"] == "onnxruntime"
        for _label, array in held_out[:3]:
            expected = classifier.predict_proba([array])[0]
            top = c.post("/v1/predict/landmarks", json={"frames": as_json(array)}).json()["top"]
            assert top[0]["label"] == classifier.labels[int(np.argmax(expected))]
            assert abs(top[0]["p"] - float(expected.max())) < 1e-3
