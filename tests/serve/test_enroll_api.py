"""Enrollment through the server (serve/models.py, serve/uploads.py): POST /v1/enroll from the recording page's zip
or single files, switching models (GET /v1/models, POST /v1/models/{name}/use), and what an upload may not do."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks.dataset import read_labels
from signrec.model.artifact import Classifier
from signrec.model.features import FeatureSpec
from signrec.model.networks import default_hparams
from signrec.serve.app import create_app
from signrec.serve.settings import ServerSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEY = {"X-API-Key": "k"}


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array.astype(np.float32))
    return out.getvalue()


@pytest.fixture
def untrained(tmp_path: Path) -> Path:
    """A model folder with untrained weights: what an upload may not do is refused before any enrollment."""
    Classifier(["Accept", "Buy", "Call"], FeatureSpec(), "lstm", default_hparams("lstm")).save(tmp_path / "base")
    return tmp_path / "base"


def test_without_the_key_enroll_is_refused_before_its_body_is_read(untrained: Path) -> None:
    app = create_app(Classifier.load(untrained), ServerSettings(api_key="k"), model_dir=untrained)
    sent: list[dict] = []
    reads = []

    async def receive() -> dict:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/enroll", "raw_path": b"/v1/enroll", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"content-length", b"900000")],
             "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and not reads
    with TestClient(app) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.post("/v1/models/base/use").status_code == 401


@pytest.mark.parametrize("entries, says", [
    ({"../evil.npy": b"x", "labels.csv": b"path,label\n"}, "not a plain relative path"),
    ({"/etc/evil.npy": b"x", "labels.csv": b"path,label\n"}, "not a plain relative path"),
    ({"a\\..\\..\\evil.npy": b"x", "labels.csv": b"path,label\n"}, "not a plain relative path"),
    ({"run.sh": b"rm -rf /", "labels.csv": b"path,label\n"}, "only labels.csv, manifest.json"),
    ({"a/x.npy": b"x"}, "no labels.csv"),
    ({"a.npy": b"x", "a.npy/b.npy": b"x"}, "can not be unpacked"),
    ({"labels.csv": b"path,label\n/etc/hostname.npy,A\n"}, "a file outside the zip"),
    ({"labels.csv": b"path,label\n../../base/model.safetensors.npy,A\n"}, "a file outside the zip"),
    ({"big.npy": bytes(3 * 2**20), "labels.csv": b"path,label\n"}, "unpacks to 3.0 MB"),
])
def test_unsafe_or_wrong_zips_are_a_clear_422_and_write_nothing_outside(untrained: Path, tmp_path: Path,
                                                                       entries: dict, says: str) -> None:
    app = create_app(Classifier.load(untrained), ServerSettings(max_enroll_mb=1), model_dir=untrained)
    before = _digest(untrained)
    with TestClient(app) as client:
        answer = client.post("/v1/enroll", files={"files": ("d.zip", _zip(entries))}, data={"signer": "me"})
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.json()
    assert not (tmp_path / "evil.npy").exists() and not Path("/etc/evil.npy").exists()
    assert _digest(untrained) == before
    assert [p.name for p in (tmp_path / "personal").glob("*")] == [], "no half-written model"


def test_a_zip_bomb_lying_in_its_headers_is_stopped_while_unpacking(untrained: Path, tmp_path: Path) -> None:
    """An entry whose header claims 1 KB but inflates to 50 MB: counted as written, stopped at the limit."""
    data = bytearray(_zip({"labels.csv": b"path,label\n", "a.npy": bytes(50 * 2**20)}))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("a.npy")
    for offset in (info.header_offset + 22, data.rfind(b"PK\x01\x02") + 24):  # local and central sizes
        data[offset:offset + 4] = (1024).to_bytes(4, "little")
    app = create_app(Classifier.load(untrained), ServerSettings(max_enroll_mb=2), model_dir=untrained)
    with TestClient(app) as client:
        answer = client.post("/v1/enroll", files={"files": ("d.zip", bytes(data))}, data={"signer": "me"})
    assert answer.status_code == 422, answer.json()
    assert any(w in answer.json()["detail"] for w in ("limit", "not a readable zip")), answer.json()


def test_other_bad_enrollment_requests(untrained: Path, tmp_path: Path) -> None:
    with TestClient(create_app(Classifier.load(untrained), ServerSettings(), model_dir=untrained)) as client:
        cases = [
            ({"files": ("notes.txt", b"hello")}, {"signer": "me", "labels": "Accept"}, "files ending in .txt"),
            ({"files": ("a.npy", _npy(np.zeros((3, 543, 3))))}, {"signer": "me"}, "1 files but 0 labels"),
            ({"files": ("a.npy", b"not numpy")}, {"signer": "me", "labels": "Accept"}, "upload"),
            ({"files": ("d.zip", b"PK\x03\x04 broken")}, {"signer": "me"}, "not a readable zip"),
            ({"files": ("d.zip", _zip({"labels.csv": b"path,label\n"}))}, {}, "`signer` is missing"),
        ]
        for files, data, says in cases:
            answer = client.post("/v1/enroll", files=files, data=data)
            assert answer.status_code == 422 and says in answer.json()["detail"], (says, answer.json())
            assert "signrec-enroll-" not in answer.json()["detail"], "the server's temporary path is hidden"
        assert client.post("/v1/models/nobody/use").status_code == 404
        assert client.get("/v1/models").json() == {"in_use": "base", "models": [client.get("/v1/models").json()
                                                                                ["models"][0]]}
    without_folder = create_app(Classifier.load(untrained), ServerSettings())
    with TestClient(without_folder) as client:
        answer = client.post("/v1/enroll", files={"files": ("a.npy", b"x")}, data={"signer": "me", "labels": "A"})
        assert answer.status_code == 409 and "without a model folder" in answer.json()["detail"]


def _person_zip(tiny_landmarks: Path) -> bytes:
    """The recording page's zip of user07 (never seen by the tiny model): Hi, Eat, Sleep x 2 takes, and a new
    sign "Salam" (user07's third Hi)."""
    rows = [s for s in read_labels(tiny_landmarks) if s.signer == "user07"]
    entries, lines = {}, ["path,label,signer,repetition"]
    for s in rows:
        label = "Salam" if (s.label, s.extra["repetition"]) == ("Hi", "R03") else s.label
        if s.extra["repetition"] == "R03" and label != "Salam":
            continue
        name = f"{label}/tester_{s.extra['repetition']}.npy"
        entries[name] = s.path.read_bytes()
        lines.append(f"{name},{label},tester,{s.extra['repetition']}")
    entries["labels.csv"] = ("\n".join(lines) + "\n").encode()
    entries["manifest.json"] = json.dumps({"extractor": {"settings": {"face": True, "hand_model": "full"}},
                                           "layout": landmarks.LAYOUT}).encode()
    return _zip(entries)


def test_enroll_from_the_page_zip_switches_every_route_and_back(mlr511_tiny_model: Path,
                                                                mlr511_tiny_landmarks: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(mlr511_tiny_model, model)
    assert main(["export", str(model), "--check", str(mlr511_tiny_landmarks)]) == 0
    before = _digest(model)
    held_out = landmarks.load(next(s.path for s in read_labels(mlr511_tiny_landmarks)
                                   if (s.signer, s.label, s.extra["repetition"]) == ("user07", "Hi", "R01")))
    frames = [[[None if np.isnan(v) else float(v) for v in point] for point in frame] for frame in held_out]
    settings = ServerSettings(api_key="k", models_dir=str(tmp_path / "mine"))
    with TestClient(create_app(Classifier.load(model), settings, model_dir=model)) as client:
        assert client.get("/v1/models", headers=KEY).json()["in_use"] == "base"
        answer = client.post("/v1/enroll", headers=KEY, data={"signer": "tester"},
                             files={"files": ("signrec-dataset.zip", _person_zip(mlr511_tiny_landmarks))})
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        assert body["in_use"] == body["model"]["name"] == "tester"
        assert body["model"]["new_signs"] == ["Salam"] and body["model"]["labels"] == ["Eat", "Hi", "Sleep", "Salam"]
        assert body["enrollment"]["signs"] == {"Eat": 2, "Hi": 2, "Salam": 1, "Sleep": 2}
        assert body["model"]["card"]["enrolled"]["signer"] == "tester" and body["model"]["expected_accuracy"]
        assert str(tmp_path) not in json.dumps(body)
        # every route uses the personal model now
        assert client.get("/v1/model", headers=KEY).json()["name"] == "tester"
        top = client.post("/v1/predict/landmarks?top_k=4", headers=KEY, json={"frames": frames}).json()["top"]
        assert {t["label"] for t in top} == {"Eat", "Hi", "Sleep", "Salam"}
        page = client.get("/app/model.json", headers=KEY).json()
        assert page["name"] == "tester" and page["signer"] == "tester" and "Salam" in page["labels"]
        assert client.get("/app/model.onnx", headers=KEY).content == (tmp_path / "mine/tester/model.onnx").read_bytes()
        with client.websocket_connect("/v1/stream?api_key=k") as ws:
            assert ws.receive_json()["labels"] == ["Eat", "Hi", "Sleep", "Salam"]
        # a second enrollment of the same person gets a name of its own; then back to the base model
        again = client.post("/v1/enroll", headers=KEY, data={"signer": "tester", "use": "false"},
                            files={"files": ("d.zip", _person_zip(mlr511_tiny_landmarks))}).json()
        assert again["model"]["name"] == "tester-2" and again["in_use"] == "tester"
        taken = client.post("/v1/enroll", headers=KEY, data={"signer": "x", "name": "tester"},
                            files={"files": ("d.zip", _person_zip(mlr511_tiny_landmarks))})
        assert taken.status_code == 409
        assert client.post("/v1/models/base/use", headers=KEY).json()["in_use"]
        assert client.get("/v1/model", headers=KEY).json()["labels"] == ["Eat", "Hi", "Sleep"]
        assert client.get("/app/model.json", headers=KEY).json()["name"] == "base"
    assert _digest(model) == before, "the base model folder is only read"
    record = json.loads((tmp_path / "mine" / "tester" / "model.json").read_text())["enrollment"]
    assert record["data"].startswith("an upload") and "signrec-enroll-" not in json.dumps(record)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["tester", "tester-2"], "no temporary left"
    # a restarted server offers the personal models it finds
    with TestClient(create_app(Classifier.load(model), settings, model_dir=model)) as client:
        listed = client.get("/v1/models", headers=KEY).json()
        assert [m["name"] for m in listed["models"]] == ["base", "tester", "tester-2"]
        assert client.post("/v1/models/tester/use", headers=KEY).json()["in_use"]


def test_enroll_from_single_landmark_files(mlr511_tiny_model: Path, mlr511_tiny_landmarks: Path,
                                           tmp_path: Path) -> None:
    rows = [s for s in read_labels(mlr511_tiny_landmarks) if s.signer == "user07" and s.extra["repetition"] == "R01"]
    settings = ServerSettings(models_dir=str(tmp_path / "mine"))
    with TestClient(create_app(Classifier.load(mlr511_tiny_model), settings, model_dir=mlr511_tiny_model)) as c:
        answer = c.post("/v1/enroll", data={"signer": "Ana María", "labels": [s.label for s in rows]},
                        files=[("files", (s.path.name, s.path.read_bytes())) for s in rows])
        assert answer.status_code == 200, answer.json()
        assert answer.json()["model"]["name"] == "Ana-María"
        assert answer.json()["enrollment"]["signs"] == {s.label: 1 for s in rows}


def test_enroll_from_an_uploaded_video(mlr511_tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    """A video is extracted on the server with the model's landmark settings; only its landmarks are used."""
    video = shared_data / "mlr511_arsl" / "videos" / "user07" / "G01" / "R01.mp4"  # "Hi", a signer never seen
    settings = ServerSettings(models_dir=str(tmp_path / "mine"))
    with TestClient(create_app(Classifier.load(mlr511_tiny_model), settings, model_dir=mlr511_tiny_model)) as c:
        answer = c.post("/v1/enroll", data={"signer": "v", "labels": ["Wave"], "use": "false"},
                        files=[("files", ("clip.mp4", video.read_bytes()))])
        assert answer.status_code == 200, answer.json()
        assert answer.json()["model"]["new_signs"] == ["Wave"] and answer.json()["in_use"] == "base"
