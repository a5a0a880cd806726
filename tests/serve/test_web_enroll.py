"""The enrollment round trip in a real browser: headless Chromium, whose fake camera plays a real clip of a signer
the model never saw, records a take of a new sign in the wizard served by a real `signrec serve`, sends it, the
server enrolls and switches, and the recogniser page shows the personal model in use and recognises with it.

Set SIGNREC_WEB_SCREENSHOTS=docs/img to refresh docs/img/web-enroll.png and docs/img/web-personal.png.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from browser import chromium, free_port, read_frames, save_screenshot, wait_for, with_rest, write_y4m
from signrec.cli import main

KEY = "enroll-key"
SCREENSHOTS = os.environ.get("SIGNREC_WEB_SCREENSHOTS")


@contextlib.contextmanager
def serve(model: Path, models_dir: Path, log: Path) -> Iterator[str]:
    """`signrec serve MODEL --models-dir DIR` as a user runs it, with an API key; yields its URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "serve", str(model), "--port", str(port),
                                 "--models-dir", str(models_dir), "--quiet"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "SIGNREC_API_KEY": KEY})
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        return False

    try:
        wait_for(healthy, 90, "the server")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _settled(tools, expression: str):
    """`expression`'s value, or None while the page is navigating (no context to evaluate in)."""
    try:
        return tools.eval(expression)
    except AssertionError:
        return None


@pytest.mark.slow
def test_record_send_enroll_and_recognise_with_the_personal_model(
        mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path, shared_data: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    assert main(["export", str(model), "--check", str(mlr511_tiny_landmarks)]) == 0
    frames, fps = read_frames(shared_data / "mlr511_arsl" / "videos" / "user07" / "G01" / "R01.mp4")  # "Hi"
    camera = write_y4m(with_rest(frames, 8), tmp_path / "clip.y4m", fps)
    with serve(model, tmp_path / "mine", tmp_path / "server.log") as url, \
            chromium(f"{url}/app/record.html?api_key={KEY}", camera, tmp_path / "profile") as tools:
        wait_for(lambda: tools.eval("!!(window.signrecRecorder && signrecRecorder.ready && signrecRecorder.server)"),
                 180, lambda: "the wizard and its server: " + tools.eval("document.body.innerText")[-400:])
        tools.eval("""document.getElementById('signs').value = 'Salam';
                      document.getElementById('signer').value = 'tester';
                      document.getElementById('takes').value = '1';
                      document.getElementById('countdown-s').value = '0';
                      document.getElementById('length-s').value = '3';
                      document.getElementById('begin').click()""")
        wait_for(lambda: tools.eval("signrecRecorder.phase === 'review'"), 120, "the take to be recorded")
        tools.eval("document.getElementById('keep').click()")
        wait_for(lambda: tools.eval("signrecRecorder.phase === 'done'"), 30, "the wizard to finish")
        tools.eval("document.getElementById('enroll').click()")
        wait_for(lambda: tools.eval("signrecRecorder.phase === 'enrolled'"), 120,
                 lambda: "the enrollment: " + tools.eval("document.getElementById('enroll-status').textContent"))
        status = tools.eval("document.getElementById('enroll-status').textContent")
        assert "“tester” is in use" in status and "new: Salam" in status and "Expected accuracy" in status, status
        save_screenshot(tools, Path(SCREENSHOTS or tmp_path) / "web-enroll.png")

        assert httpx.get(url + "/v1/model", headers={"X-API-Key": KEY}).json()["name"] == "tester"
        tools.call("Page.navigate", url=tools.eval("document.getElementById('use-link').href"))
        time.sleep(1)
        wait_for(lambda: _settled(tools, "!!(window.signrec && signrec.ready)"), 180, "the recogniser")
        in_use = tools.eval("document.getElementById('in-use').textContent")
        assert "personal model “tester” of tester" in in_use and "expected accuracy" in in_use, in_use
        assert tools.eval("signrec.model.labels") == ["Eat", "Hi", "Sleep", "Salam"]
        tools.eval("document.getElementById('start').click()")
        shown = wait_for(lambda: tools.eval("signrec.state && signrec.state.words.length && signrec.state"), 150,
                         lambda: f"a sign recognised; status {tools.eval('document.body.innerText')[-300:]}")
        assert shown["words"][0]["label"] in ("Hi", "Salam"), shown["words"]
        assert tools.eval("document.getElementById('models').value") == "tester"
        save_screenshot(tools, Path(SCREENSHOTS or tmp_path) / "web-personal.png")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["tester"]
