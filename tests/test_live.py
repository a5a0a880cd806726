"""Live recognition with real video files standing in for a camera."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from signrec.artifact import Classifier
from signrec.cli import main
from signrec.continuous import transcribe
from signrec.live import LiveRecognizer, draw

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_live_recognizer_on_a_video_file(mlr511_tiny_model, mlr511_sentence, mlr511_sentence_landmarks):
    video, _reference, _bounds = mlr511_sentence
    classifier = Classifier.load(mlr511_tiny_model)
    with LiveRecognizer(classifier, str(video)) as live:
        updates = list(live)
        final = live.finish()
        summary = live.summary()
    assert len(updates) == len(mlr511_sentence_landmarks) == summary["frames"]
    assert [u.index for u in updates] == list(range(len(updates)))
    assert np.allclose(updates[-1].t, (len(updates) - 1) / 15)
    # frame by frame it reads the same words as the offline transcription of the same video
    offline = transcribe(classifier, mlr511_sentence_landmarks, 15.0)
    assert [w["label"] for w in final["words"]] == [w["label"] for w in offline]
    assert all(u.latency_ms > 0 for u in updates)
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["max"]
    line = updates[len(updates) // 2].to_json()
    assert set(line) == {"frame", "t", "top", "words", "signing", "latency_ms"}
    json.dumps(line)  # a headless line is plain JSON
    # the window drawing works on a real frame (not shown: tests have no display)
    image = draw(updates[len(updates) // 2])
    assert image.shape == updates[0].frame.shape and not np.array_equal(image, updates[len(updates) // 2].frame)


def test_headless_cli_prints_json_lines_in_real_time(mlr511_tiny_model, shared_data, capsys):
    clip = shared_data / "mlr511_arsl" / "videos" / "user08" / "G07" / "R03.mp4"  # Eat, 1 sign, unseen signer
    start = time.perf_counter()
    assert main(["live", str(mlr511_tiny_model), "--video", str(clip), "--headless", "--realtime"]) == 0
    elapsed = time.perf_counter() - start
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    done = lines[-1]
    assert done["done"] and done["frames"] > 20
    assert elapsed >= 0.9 * (done["frames"] - 1) / 15  # paced at the file's 15 fps
    assert [w["label"] for w in done["words"]] == ["Eat"]
    updates = lines[:-1]
    assert updates and all({"t", "top", "words", "latency_ms"} <= set(u) for u in updates)
    assert any(u["signing"] for u in updates) and not updates[0]["signing"]
    assert len(updates) < done["frames"]  # only changes are printed


def test_window_needs_a_display_and_bad_sources_exit_2(mlr511_tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["live", str(mlr511_tiny_model), "--video", str(tmp_path / "x.mp4")]) == 2
    assert "--headless" in capsys.readouterr().err
    assert main(["live", str(mlr511_tiny_model), "--video", str(tmp_path / "x.mp4"), "--headless"]) == 2
    assert "x.mp4" in capsys.readouterr().err
