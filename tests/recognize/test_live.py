"""Live recognition with real video files standing in for a camera."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from signrec.cli import build_parser, main
from signrec.model.artifact import Classifier
from signrec.recognize.continuous import transcribe
from signrec.recognize.live import LiveRecognizer, draw
from signrec.video.sources import Latest, open_source

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
    assert summary["landmarks"] == {"face": True, "hand_model": "full"}  # as the model's training data
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


def test_live_and_predict_share_one_checked_threshold(capsys):
    """Both default to the same threshold, so they find the same words; a threshold outside [0, 1] is refused."""
    positional = {"live": ["MODEL"], "predict": ["MODEL", "INPUT"]}
    defaults = {command: build_parser(command).parse_args([command, *args]).threshold
                for command, args in positional.items()}
    assert defaults["live"] == defaults["predict"]
    for command, value in [("live", "2"), ("predict", "2"), ("predict", "-0.1"), ("live", "nan")]:
        with pytest.raises(SystemExit) as refused:
            main([command, *positional[command], "--threshold", value])
        assert refused.value.code == 2
        assert f"argument --threshold: must be between 0 and 1, got {value}" in capsys.readouterr().err


class Camera:
    """A real video played in real time, as a camera delivers it: frames do not wait for the reader."""

    live = True

    def __init__(self, video, fps: float = 30.0):
        with open_source(video) as source:
            self.frames = [frame for _t, frame in source]
        self.fps = fps
        self.delivered: list[float] = []

    def __iter__(self):
        start = time.perf_counter()
        for i, frame in enumerate(self.frames):
            time.sleep(max(0.0, start + i / self.fps - time.perf_counter()))
            self.delivered.append(time.perf_counter())
            yield i / self.fps, frame

    def close(self) -> None:
        pass


def test_a_slow_reader_of_a_camera_gets_the_newest_frame(shared_data):
    camera = Camera(shared_data / "mlr511_arsl" / "videos" / "user08" / "G01" / "R01.mp4")
    latest = Latest(iter(camera))
    taken, ages = [], []
    for t, _frame in latest:
        index = round(t * camera.fps)
        ages.append(time.perf_counter() - camera.delivered[index])
        taken.append(index)
        time.sleep(0.1)  # three camera frames' time per frame: two of every three must go
    assert taken == sorted(set(taken)) and taken[-1] == len(camera.frames) - 1  # in order, the last one kept
    assert len(taken) + latest.dropped == len(camera.frames)
    assert latest.dropped >= len(camera.frames) // 2
    assert np.median(ages) < 0.05  # taken when new, not after waiting behind older frames


def test_live_recognizer_keeps_up_with_a_camera_by_dropping_frames(mlr511_tiny_model, shared_data):
    camera = Camera(shared_data / "mlr511_arsl" / "videos" / "user08" / "G01" / "R01.mp4", fps=200.0)
    with LiveRecognizer(Classifier.load(mlr511_tiny_model), camera) as live:
        frames = [update.t for update in live]
        summary = live.summary()
    assert frames == sorted(frames) and summary["frames"] == len(frames)
    # MediaPipe takes longer than 5 ms a frame on any CPU, so frames are dropped, never queued
    assert summary["dropped_frames"] > 0 and len(frames) + summary["dropped_frames"] == len(camera.frames)

