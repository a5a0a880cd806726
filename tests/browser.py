"""Headless Chromium with a fake camera that plays a real clip, driven over the DevTools protocol (a WebSocket:
`websockets` is already a dependency). Used by tests/test_web_ondevice.py and benchmarks/web_parity.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
from websockets.sync.client import connect

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0",
                  "--window-size=1200,720", "--hide-scrollbars", "--disable-background-timer-throttling",
                  "--disable-renderer-backgrounding"]


def read_frames(video: Path) -> tuple[list[Any], float]:
    """Every frame of a video (BGR) and its frame rate."""
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 15.0
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    return frames, fps


def write_y4m(frames: list[Any], out: Path, rate: float) -> Path:
    """Frames as uncompressed Y4M, what Chromium's fake camera plays in a loop, at `rate` frames a second
    (slower than the clip's own rate lets a slow page take every frame)."""
    h, w = frames[0].shape[:2]
    num, den = (round(rate * 1000), 1000) if rate != int(rate) else (int(rate), 1)
    with open(out, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{num}:{den} Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


def with_rest(frames: list[Any], hold: int) -> list[Any]:
    """The clip with its first and last frame held `hold` times: the loop's seam looks like a signer at rest."""
    return [frames[0]] * hold + frames + [frames[-1]] * hold


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str | Callable[[], str], poll: float = 0.25) -> Any:
    """Poll `check` until it returns something true; `what` (text, or a function giving it) explains a timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if result := check():
            return result
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A plain static web server on 127.0.0.1 (any static host would do); yields (url, stop)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop() -> None:
        if not stopped:
            server.shutdown()
            server.server_close()
            stopped.append(True)

    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", stop
    finally:
        stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class DevTools:
    """The few DevTools protocol calls the tests need, over the page's WebSocket."""

    def __init__(self, ws_url: str):
        self.ws = connect(ws_url, max_size=256 * 2**20, open_timeout=30)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == call_id:
                assert "error" not in message, message["error"]
                return message["result"]

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result.get("exceptionDetails")
        return result["result"].get("value")


@contextlib.contextmanager
def chromium(url: str, camera: Path, profile: Path) -> Iterator[DevTools]:
    """Chromium showing `url`, its fake camera playing the Y4M file `camera`; yields the page's DevTools."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is needed: apt-get install chromium chromium-driver (.ci/run does)"
    browser = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={camera}",
                                f"--user-data-dir={profile}", url], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        port = wait_for(lambda: port_file.exists() and port_file.read_text().split("\n")[0], 60, "Chromium")
        page = wait_for(lambda: next((t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                                      if t["type"] == "page" and t["url"].startswith(url.split("?")[0])), None),
                        30, "the page")
        yield DevTools(page["webSocketDebuggerUrl"])
    finally:
        browser.terminate()
        browser.wait(timeout=20)


def save_screenshot(tools: DevTools, path: Path) -> None:
    """The page as a palette PNG: a fraction of the size, no visible loss for a UI."""
    import base64
    import io

    from PIL import Image

    size = tools.call("Page.getLayoutMetrics")["cssContentSize"]  # the whole page, below the window's edge too
    png = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                     clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})["data"]
    image = Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
