"""The on-device page (signrec.serve.web): pinned runtime, `export --format web`, `/app/` in serve, the JS port of the
continuous recogniser against Python's, and (slow) the page in headless Chromium on real held-out clips against
the Python pipeline, offline after its first load, and the recording wizard.

Set SIGNREC_WEB_SCREENSHOTS=docs/img to refresh the docs' screenshots of both pages from the slow tests.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from signrec.cli import main
from signrec.model.artifact import Classifier
from signrec.model.runtime import OnnxNetwork
from signrec.recognize.continuous import StreamRecognizer
from signrec.serve.app import create_app
from signrec.serve.settings import ServerSettings
from signrec.serve.web import bundle, vendor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = os.environ.get("SIGNREC_WEB_SCREENSHOTS")


def test_runtime_is_complete_and_an_altered_file_is_refused(tmp_path: Path) -> None:
    assert vendor.missing() == [], "run `make setup` to fetch the browser runtime"
    copy = tmp_path / "vendor"
    shutil.copytree(vendor.VENDOR_DIR, copy)
    wasm = copy / "ort" / "ort-wasm-simd-threaded.wasm"
    data = bytearray(wasm.read_bytes())
    data[1000] ^= 1
    wasm.write_bytes(bytes(data))
    assert vendor.missing(copy) == ["ort/ort-wasm-simd-threaded.wasm"]
    with pytest.raises(vendor.VendorError, match="make setup"):
        vendor.check(copy)


def test_export_web_writes_a_whole_static_app(mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path,
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    argv = ["export", str(mlr511_tiny_model), "--format", "web", "--out", str(out),
            "--check", str(mlr511_tiny_landmarks), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["onnx"] == "exported" and report["labels"] == ["Eat", "Hi", "Sleep"]
    worker = (out / "sw.js").read_text()
    listed = json.loads(worker.split("const FILES = ", 1)[1].split(";\n", 1)[0])
    assert all((out / name).is_file() for name in listed if name != "./")
    assert {"index.html", "app.js", "manifest.json", "vendor/holistic/holistic_solution_simd_wasm_bin.wasm",
            "vendor/ort/ort-wasm-simd-threaded.wasm"} <= set(listed)
    card = json.loads((out / "model.json").read_text())
    assert card["labels"] == ["Eat", "Hi", "Sleep"] and card["landmarks"] == {"face": True, "hand_model": "full"}
    assert card["onnx_sha256"] == vendor.file_sha256(out / "model.onnx")
    onnx = OnnxNetwork(out / "model.onnx")
    assert onnx.metadata["signrec.weights_sha256"] == Classifier.load(mlr511_tiny_model).weights_digest()
    assert not (mlr511_tiny_model / "model.onnx").exists(), "the model folder is left as it was"
    # An earlier export is replaced whole; any other folder is refused.
    assert main(argv) == 0
    capsys.readouterr()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["export", str(mlr511_tiny_model), "--format", "web", "--out", str(tmp_path / "other")]) == 2
    assert "not an earlier web export" in capsys.readouterr().err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_export_web_refuses_a_model_of_lite_hand_landmarks(mlr511_tiny_model: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    meta = json.loads((model / "model.json").read_text())
    meta["landmarks"] = {"face": True, "hand_model": "lite"}
    (model / "model.json").write_text(json.dumps(meta))
    assert main(["export", str(model), "--format", "web", "--out", str(tmp_path / "site")]) == 2
    assert "lite hand model" in capsys.readouterr().err and not (tmp_path / "site").exists()


def test_serve_hosts_the_page_and_guards_the_model(mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path,
                                                  tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    key = {"X-API-Key": "k"}

    def client() -> TestClient:
        return TestClient(create_app(Classifier.load(model), ServerSettings(api_key="k"), model_dir=model))

    with client() as c:
        page = c.get("/app/")
        assert page.status_code == 200 and "vendor/holistic/holistic.js" in page.text
        assert c.get("/app").url.path == "/app/"
        assert "const VERSION" in c.get("/app/sw.js").text
        assert c.get("/app/vendor/ort/ort.wasm.bundle.min.mjs").headers["content-type"].startswith("text/javascript")
        assert c.get("/app/model.json").status_code == 401
        assert c.get("/app/model.json", headers=key).json()["labels"] == ["Eat", "Hi", "Sleep"]
        missing = c.get("/app/model.onnx", headers=key)
        assert missing.status_code == 404 and f"signrec export {model}" in missing.json()["detail"]
        assert c.get("/").status_code == 200  # the server-side page stays
    assert main(["export", str(model), "--check", str(mlr511_tiny_landmarks)]) == 0
    for backend in ("torch", "onnxruntime"):
        app = create_app(Classifier.load(model, backend=backend), ServerSettings(api_key="k"), model_dir=model)
        with TestClient(app) as c:
            onnx = c.get("/app/model.onnx?api_key=k")
            assert onnx.status_code == 200 and onnx.content == (model / "model.onnx").read_bytes()


class StubClassifier:
    """Deterministic probabilities from the frames, computed the same way by the JS stub below."""

    labels = ["a", "b", "c"]
    meta: dict = {}  # no calibrated threshold: the default, as the page's

    def predict_proba(self, sequences: list[np.ndarray]) -> np.ndarray:
        frames = sequences[0]
        x = frames[:, 522, 0]  # right wrist x, NaN where the hand is missing
        scores = np.array([len(frames) % 3, 3 * float(np.nanmean(x)) if not np.isnan(x).all() else 0.0, 1.0])
        e = np.exp(scores - scores.max())
        return (e / e.sum())[None]


JS_STUB = """
import { StreamRecognizer } from "./recognizer.mjs";
import { readFileSync } from "node:fs";
const { frames, fps } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const classify = async (seq) => {
  let sum = 0, n = 0;
  for (const f of seq) if (!Number.isNaN(f[522 * 3])) { sum += f[522 * 3]; n += 1; }
  const s = [seq.length % 3, n ? 3 * (sum / n) : 0, 1];
  const m = Math.max(...s), e = s.map((v) => Math.exp(v - m)), z = e.reduce((a, b) => a + b);
  return e.map((v) => v / z);
};
const rec = new StreamRecognizer(["a", "b", "c"], classify);
const states = [];
for (let i = 0; i < frames.length; i++) {
  const f = Float32Array.from(frames[i], (v) => (v === null ? NaN : v));
  states.push(await rec.push(f, i / fps));
}
states.push(await rec.finish());
console.log(JSON.stringify(states));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's recogniser")
def test_page_recogniser_cuts_and_labels_like_python(mlr511_sentence_landmarks: np.ndarray, tmp_path: Path) -> None:
    landmarks, fps = mlr511_sentence_landmarks, 15.0
    shutil.copy(bundle.PAGE_DIR / "recognizer.js", tmp_path / "recognizer.mjs")
    (tmp_path / "run.mjs").write_text(JS_STUB)
    frames = [[None if math.isnan(v) else float(v) for v in f.ravel()] for f in landmarks]
    (tmp_path / "frames.json").write_text(json.dumps({"frames": frames, "fps": fps}))
    js = json.loads(subprocess.run(["node", str(tmp_path / "run.mjs"), str(tmp_path / "frames.json")],
                                   capture_output=True, text=True, check=True, timeout=120).stdout)
    rec = StreamRecognizer(StubClassifier(), fps)  # type: ignore[arg-type]
    py = [rec.push(f, i / fps) for i, f in enumerate(landmarks)] + [rec.finish()]
    assert [s["signing"] for s in js] == [s["signing"] for s in py]
    assert [[w["label"] for w in s["words"]] for s in js] == [[w["label"] for w in s["words"]] for s in py]
    assert len(py[-1]["words"]) >= 3
    for a, b in zip(js, py, strict=True):
        assert [t["label"] for t in a["top"]] == [label for label, _p in b["top"]]
        assert np.allclose([t["p"] for t in a["top"]], [p for _label, p in b["top"]], atol=2e-3)


JS_DATASET = """
import { datasetFiles, zip } from "./dataset.mjs";
import { writeFileSync } from "node:fs";
const frame = (v) => Float32Array.from({ length: 543 * 3 }, (_x, i) => (i < 99 ? v + i / 1000 : NaN));
const takes = [{ label: "What?", frames: [frame(0.1), frame(0.2)] }, { label: "ljubičasta", frames: [frame(0.3)] },
               { label: "What?", frames: [frame(0.4), frame(0.5), frame(0.6)] }];
const blob = zip(datasetFiles(takes, "anna, b", { face: false, hand_model: "full" }));
writeFileSync(process.argv[2], Buffer.from(await blob.arrayBuffer()));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's dataset writer")
def test_wizard_dataset_zip_is_a_signrec_dataset(tmp_path: Path) -> None:
    import zipfile

    from signrec.landmarks import layout as landmarks
    from signrec.landmarks.dataset import read_labels
    from signrec.landmarks.store import FolderStore

    shutil.copy(bundle.PAGE_DIR / "dataset.js", tmp_path / "dataset.mjs")
    (tmp_path / "run.mjs").write_text(JS_DATASET)
    subprocess.run(["node", str(tmp_path / "run.mjs"), str(tmp_path / "d.zip")], check=True, timeout=60)
    with zipfile.ZipFile(tmp_path / "d.zip") as archive:
        assert archive.testzip() is None
        archive.extractall(tmp_path / "d")
    rows = read_labels(tmp_path / "d" / "labels.csv")
    assert [(r.label, r.signer, r.extra["repetition"]) for r in rows] == [
        ("What?", "anna, b", "R01"), ("ljubičasta", "anna, b", "R01"), ("What?", "anna, b", "R02")]
    arrays = [landmarks.load(r.path) for r in rows]
    assert [len(a) for a in arrays] == [2, 1, 3]
    assert arrays[2][2, 0, 0] == np.float32(0.6) and np.isnan(arrays[2][2, 33:]).all()
    assert FolderStore.open(tmp_path / "d" / "labels.csv").landmark_models == {"face": False, "hand_model": "full"}


@pytest.mark.slow
def test_page_in_chromium_matches_python_on_held_out_clips_and_works_offline(
        mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path, shared_data: Path, tmp_path: Path) -> None:
    """Real held-out clips (user07, never seen in training) through the fake camera: the page's answer must be
    the Python pipeline's; the first clip plays after the web server was stopped (the page's offline copy)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import web_parity

    site = Path(bundle.write_folder(mlr511_tiny_model, tmp_path / "site", [str(mlr511_tiny_landmarks)])["path"])
    classifier = Classifier.load(mlr511_tiny_model)
    clips = web_parity.clips_for(shared_data / "mlr511_arsl" / "labels.csv", classifier.labels, "user07", "R01")
    assert len(clips) == 3
    results = []
    for i, (label, video) in enumerate(clips):
        with web_parity.static_server(site) as (url, stop):
            shot = Path(SCREENSHOTS) / "web-ondevice.png" if SCREENSHOTS and i == 1 else None
            results.append(web_parity.measure_clip(classifier, url, video, label, tmp_path, rate=1.5,
                                                   offline_stop=stop if i == 0 else None, screenshot=shot))
    print(web_parity.table(results))
    for r in results:
        assert r["page"] == r["python"], r
        assert r["frames_taken"] >= 0.8 * r["frames"]  # a busy machine makes the page skip a few
        assert r["landmarks"]["pose"]["median_abs"] < 0.02 and r["landmarks"]["pose"]["agree"] > 0.95


def _record_one_take(site: Path, camera: Path, profile: Path, label: str,
                     screenshot: Path | None = None) -> tuple[list[dict], bytes]:
    """The wizard in Chromium: one take of `label`, no countdown, kept; returns its hints and the dataset zip."""
    from browser import chromium, save_screenshot, static_server, wait_for

    with static_server(site) as (url, _stop), chromium(url + "record.html", camera, profile) as tools:
        wait_for(lambda: tools.eval("!!(window.signrecRecorder && signrecRecorder.ready)"), 180, "the wizard")
        tools.eval(f"""document.getElementById('signs').value = {json.dumps(label)};
                       document.getElementById('signer').value = 'tester';
                       document.getElementById('takes').value = '1';
                       document.getElementById('countdown-s').value = '0';
                       document.getElementById('length-s').value = '5';
                       document.getElementById('begin').click()""")
        wait_for(lambda: tools.eval("signrecRecorder.phase === 'review'"), 120, "the take to be recorded")
        hints = tools.eval("signrecRecorder.hints")
        if screenshot is not None:
            time.sleep(1)  # the replay draws the take's skeleton
            save_screenshot(tools, screenshot)
        if not tools.eval("document.getElementById('keep').disabled"):
            tools.eval("document.getElementById('keep').click()")
            wait_for(lambda: tools.eval("signrecRecorder.phase === 'done'"), 30, "the wizard to finish")
        data = tools.eval("signrecRecorder.takes.length ? signrecRecorder.zipBase64() : ''")
    import base64

    return hints, base64.b64decode(data)


@pytest.mark.slow
def test_wizard_records_a_take_as_a_dataset_row_and_hints_at_hidden_hands(
        mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path, shared_data: Path, tmp_path: Path) -> None:
    import io
    import zipfile

    import cv2

    from browser import read_frames, with_rest, write_y4m
    from signrec.landmarks import layout as landmarks
    from signrec.landmarks.dataset import read_labels
    from signrec.video.holistic import extract_video

    site = Path(bundle.write_folder(mlr511_tiny_model, tmp_path / "site", [str(mlr511_tiny_landmarks)])["path"])
    video = shared_data / "mlr511_arsl" / "videos" / "user07" / "G01" / "R01.mp4"
    frames, fps = read_frames(video)
    hints, data = _record_one_take(site, write_y4m(with_rest(frames, 8), tmp_path / "clip.y4m", fps),
                                   tmp_path / "p1", "Hi")
    assert not any(h["check"] in ("no_person", "hands_missing") for h in hints), hints
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path / "dataset")
    rows = read_labels(tmp_path / "dataset" / "labels.csv")
    assert [(r.label, r.signer, r.extra["repetition"]) for r in rows] == [("Hi", "tester", "R01")]
    take = landmarks.load(rows[0].path)
    assert take.shape[1:] == (543, 3) and len(take) >= 5 and not np.isnan(take[:, :33]).all()

    # The same clip with both hands painted over, wherever Python MediaPipe finds them: the hint says so.
    found = extract_video(video)[0]
    hidden = []
    for frame, points in zip(frames, found, strict=True):
        frame = frame.copy()
        for part in ("left_hand", "right_hand"):
            xy = points[landmarks.PARTS[part], :2]
            if not np.isnan(xy).all():
                (x0, y0), (x1, y1) = np.nanmin(xy, 0), np.nanmax(xy, 0)
                h, w = frame.shape[:2]
                cv2.rectangle(frame, (int(x0 * w) - 40, int(y0 * h) - 40), (int(x1 * w) + 40, int(y1 * h) + 40), 0, -1)
        hidden.append(frame)
    shot = Path(SCREENSHOTS) / "web-record.png" if SCREENSHOTS else None
    hints, _data = _record_one_take(site, write_y4m(with_rest(hidden, 8), tmp_path / "hidden.y4m", fps),
                                    tmp_path / "p2", "Hi", screenshot=shot)
    assert "hands_missing" in [h["check"] for h in hints], hints
