"""The HTTP API fuzzed from its own OpenAPI schema, and the WebSocket fuzzed with any messages (issue 20, point 12).

A real model (trained on MLR511 in the `mlr511_tiny_model` fixture) is served in-process. Whatever a client
sends: no 5xx, every HTTP answer matches the schema (status, content type, body), and a stream answers each
message with a documented reply or closes with a documented code.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from signrec.model.artifact import Classifier
from signrec.serve.app import create_app
from signrec.serve.settings import ServerSettings
from strategies import SPECIAL_FLOATS, json_values

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAM_REPLIES = {"result", "final", "error", "dropped"}
CLOSE_CODES = {1000, 1009, 4401, 4422, 4429}
"""What docs/server.md promises a stream may end with."""


@pytest.fixture(scope="module")
def app(mlr511_tiny_model, tmp_path_factory):
    # A small upload limit keeps generated bodies cheap and reaches the 413 paths; with the model's folder, the
    # enrollment endpoints are live (personal models go to a folder of this test's).
    settings = ServerSettings(max_upload_mb=1, max_duration_s=5, models_dir=str(tmp_path_factory.mktemp("personal")))
    return create_app(Classifier.load(mlr511_tiny_model), settings, model_dir=mlr511_tiny_model)


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# schemathesis' own pytest integration (schemathesis.pytest.from_fixture) fails under pytest 9
# ("'Function' object has no attribute '_nodeid'"), so each operation's strategy is run with hypothesis directly.
OPERATIONS = ["GET /healthz", "GET /v1/model", "POST /v1/predict/landmarks", "POST /v1/predict", "GET /v1/models",
              "POST /v1/models/{name}/use", "POST /v1/enroll"]
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op not in ("GET /healthz", "GET /v1/models")]
# /healthz and /v1/models take nothing to break
"""Every operation with valid requests, and every one that takes parameters or a body with invalid ones."""


@pytest.mark.parametrize("operation, mode", CASES, ids=[f"{op} {mode.name.lower()}" for op, mode in CASES])
def test_http_api_from_schema(api_schema, operation: str, mode: GenerationMode) -> None:
    method, path = operation.split()

    @given(api_schema[path][method].as_strategy(generation_mode=mode))
    @settings(suppress_health_check=list(HealthCheck))
    def call(case) -> None:
        case.call_and_validate(checks=CHECKS)

    call()


def test_schema_lists_every_operation(api_schema) -> None:
    """The parametrisation above covers the whole API: a new endpoint must be added to it."""
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == set(OPERATIONS)


def test_unparsable_body_is_422(client: TestClient) -> None:
    """Regression (found by the fuzz): a JSON body not UTF-8, or broken multipart data, got an undocumented 400."""
    response = client.post("/v1/predict/landmarks", content=b'{"frames": "\xff\xfe"}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "UTF-8" in response.json()["detail"]
    broken = client.post("/v1/predict", content=b"--b\r\n5.7--b--\r\n",
                         headers={"content-type": "multipart/form-data; boundary=b"})
    assert broken.status_code == 422 and "multipart" in broken.json()["detail"]


def test_videos_after_a_second_lifespan(app, mlr511_tiny_model) -> None:
    """Regression (found by the fuzz): after one lifespan ended, every upload got 500 from a shut-down pool."""
    for _ in range(2):
        with TestClient(app) as client:
            response = client.post("/v1/predict", files={"file": ("x.mp4", b"not a video", "video/mp4")})
            assert response.status_code == 422, response.text


# --- WebSocket ---------------------------------------------------------------------------------------------

def _jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _frame_json(values: list[float], t: object) -> str:
    frame = np.resize(np.array(values, dtype=np.float64), (543, 3))
    return json.dumps({"landmarks": [[None if np.isnan(v) else v for v in p] for p in frame.tolist()], "t": t})


MESSAGES = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60),
    json_values().map(json.dumps),
    st.just(json.dumps({"type": "end"})),
    st.integers(0, 3).map(_jpeg),
    st.just(b"\xff\xd8\xff" + b"\x00" * 40),  # a JPEG signature and nothing behind it
    st.tuples(st.lists(st.one_of(st.floats(0, 1), SPECIAL_FLOATS), min_size=1, max_size=9),
              st.one_of(st.floats(allow_nan=False), st.none(), st.text(max_size=3))).map(lambda a: _frame_json(*a)),
    st.sampled_from([json.dumps({"landmarks": [[0.5, 0.5, 0.0]] * 542}), json.dumps({"landmarks": "x"}),
                     json.dumps([[0.5, 0.5, 0.0]] * 543), json.dumps({"landmarks": [[[0.5]] * 3] * 543})]),
)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:
        yield client


@given(st.lists(MESSAGES, min_size=1, max_size=6),
       st.sampled_from(["", "?fps=15", "?fps=0", "?fps=-1", "?fps=1e9", "?fps=nan", "?fps=x", "?api_key=k"]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_stream_any_messages(client: TestClient, messages: list[str | bytes], query: str) -> None:
    try:
        with client.websocket_connect("/v1/stream" + query) as ws:
            assert ws.receive_json()["type"] == "ready"
            for message in messages:
                if isinstance(message, bytes):
                    ws.send_bytes(message)
                else:
                    ws.send_text(message)
                reply = ws.receive_json()
                assert reply["type"] in STREAM_REPLIES, reply
                if reply["type"] in ("error", "dropped"):
                    assert reply["status"] in (413, 422, 429) and reply["detail"], reply
                else:
                    assert all(np.isfinite(p["p"]) for p in reply["top"]), reply
    except WebSocketDisconnect as exc:
        assert exc.code in CLOSE_CODES, (exc.code, exc.reason)
