"""The web page end to end: real headless Chromium, whose fake camera plays a real held-out sign clip,
streams to a real `signrec serve` process; the page must show the right sign.

Chromium is driven over its DevTools protocol (a WebSocket; `websockets` is already a dependency).
Set SIGNREC_WEB_SCREENSHOT=docs/img/web.png to refresh the README screenshot from this run.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest
from websockets.sync.client import connect

from signrec.landmarks.dataset import read_labels

CLIP = ("Hi", "user07", "R01")  # label, signer, repetition: user07 is the tiny model's held-out test signer
API_KEY = "e2e-key"  # the page takes it from ?api_key= (or its Connection field) for /v1/model and the stream
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                  "--use-fake-device-for-media-stream", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0",
                  "--window-size=1200,720", "--hide-scrollbars"]


def write_y4m(video: Path, out: Path, rest_s: float = 0.5) -> Path:
    """A clip as uncompressed Y4M (what Chromium's fake camera plays, in a loop), with `rest_s` of its
    first and last frames held, so that the loop's seam looks like a signer resting between signs."""
    cap = cv2.VideoCapture(str(video))
    fps = round(cap.get(cv2.CAP_PROP_FPS)) or 15
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    hold = round(rest_s * fps)
    h, w = frames[0].shape[:2]
    with open(out, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in [frames[0]] * hold + frames + [frames[-1]] * hold:
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what, log: Path | None = None):
    """Poll `check` until it returns something true; `what` (text, or a function giving it) explains a timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if result := check():
            return result
        time.sleep(0.25)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}\n{tail}")


@pytest.fixture()
def server(mlr511_tiny_model: Path, tmp_path: Path) -> Iterator[str]:
    """`signrec serve MODEL` as a user runs it: a real uvicorn process on a free port."""
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "serve", str(mlr511_tiny_model),
                                 "--port", str(port), "--max-fps", "15"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "SIGNREC_API_KEY": API_KEY})
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 90, "the server", log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class DevTools:
    """The few DevTools protocol calls the test needs, over the page's WebSocket."""

    def __init__(self, ws_url: str):
        self.ws = connect(ws_url, max_size=64 * 2**20, open_timeout=30)
        self.ids = itertools.count(1)

    def call(self, method: str, **params):
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == call_id:
                assert "error" not in message, message["error"]
                return message["result"]

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["result"].get("description")
        return result["result"].get("value")


@pytest.fixture()
def chromium(tmp_path: Path, shared_data: Path) -> Iterator[tuple[list[str], Path]]:
    """Chromium command line with the fake camera on a real clip, and its profile folder."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is needed for this test: apt-get install chromium chromium-driver (.ci/run does)"
    label, signer, repetition = CLIP
    video = next(s.path for s in read_labels(shared_data / "mlr511_arsl" / "labels.csv")
                 if (s.label, s.signer, s.extra["repetition"]) == CLIP)
    y4m = write_y4m(video, tmp_path / f"{label}-{signer}-{repetition}.y4m")
    profile = tmp_path / "profile"
    yield [binary, *CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={y4m}", f"--user-data-dir={profile}"], profile


def test_page_recognises_a_held_out_clip_from_the_camera(server: str, chromium: tuple[list[str], Path],
                                                         tmp_path: Path) -> None:
    command, profile = chromium
    assert httpx.get(server + "/v1/model").status_code == 401
    browser = subprocess.Popen([*command, f"{server}/?api_key={API_KEY}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        port = wait_for(lambda: port_file.exists() and port_file.read_text().split("\n")[0], 60, "Chromium")
        page = wait_for(lambda: next((t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                                      if t["type"] == "page" and t["url"].startswith(server)), None),
                        30, "the page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        wait_for(lambda: tools.eval("document.readyState === 'complete' && !!document.getElementById('start')"),
                 30, "the page to load")
        wait_for(lambda: "Knows 3 signs" in tools.eval("document.getElementById('model').textContent"), 30,
                 "the model description")
        tools.eval("document.getElementById('start').click()")

        def shown() -> dict | None:
            state = tools.eval("""({
                sign: document.getElementById('sign').textContent,
                top: [...document.querySelectorAll('#top .label')].map((e) => e.textContent),
                words: [...document.querySelectorAll('#words li')].map((e) => e.firstChild.textContent),
                status: document.getElementById('status').textContent,
                drawn: (() => { const c = document.getElementById('overlay');
                                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                                let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; })(),
            })""")
            seen.append(state)
            return state if state["sign"] == CLIP[0] and CLIP[0] in state["words"] and state["drawn"] else None

        seen: list[dict] = []
        start = time.monotonic()
        state = wait_for(shown, 150, lambda: f"the page to show {CLIP[0]!r}; last seen: {seen[-1:]}")
        print(f"page showed {state} after {time.monotonic() - start:.1f} s")
        assert state["top"][0] == CLIP[0] and state["drawn"] > 500
        assert "Connected" in state["status"]
        # For the picture: the next time the clip is mid-sign, with a hand found and drawn.
        wait_for(lambda: tools.eval("document.getElementById('stats').textContent.includes('signing') && "
                                    "document.getElementById('sign').textContent === " + json.dumps(CLIP[0])),
                 60, "the clip's next repetition")
        png = tools.call("Page.captureScreenshot", format="png")["data"]
        save_screenshot(png, tmp_path / "web.png")
        if target := os.environ.get("SIGNREC_WEB_SCREENSHOT"):
            save_screenshot(png, Path(target))
    finally:
        browser.terminate()
        browser.wait(timeout=20)


def save_screenshot(png_base64: str, path: Path) -> None:
    """Write the screenshot as a palette PNG: a fraction of the size, no visible loss for a UI."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(png_base64))).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
